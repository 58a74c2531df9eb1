-- SQL twins of streams/sketch.py, the window engine's quantile sketch, stored as Map(Int32, UInt64):
-- bucket index -> count. The index is the float32 bit pattern shifted right by 17 (sign, exponent
-- and 6 mantissa bits: 64 log-linear buckets per power of two, relative error <= 0.78 %); index
-- order is value order. Merge sketches with sumMap, then ask for a quantile:
--     ioc_sketch_quantile(sumMap(wait_sketch), 0.9)
-- The "lower" rank convention of streams/sketch.py: the bucket holding sorted value number
-- floor(q * (n - 1) + 1e-9), reported as its representative 2*lo*hi/(lo+hi).
-- SQL functions are server-wide (not per database); every database shares these definitions.

-- Magnitude part of an index: negative values are stored mirrored as -(index of |x|) - 1.
CREATE FUNCTION IF NOT EXISTS ioc_sketch_magnitude AS (index) ->
    if(toInt64(index) < 0, -toInt64(index) - 1, toInt64(index));

-- Width of the buckets of a magnitude: 1/64 of its power of two (subnormals: of 2^-126).
CREATE FUNCTION IF NOT EXISTS ioc_sketch_width AS (magnitude) ->
    pow(2., if(bitShiftRight(magnitude, 6) > 0, toInt64(bitShiftRight(magnitude, 6)) - 127, -126)) / 64;

-- Lower bound of the bucket of a magnitude.
CREATE FUNCTION IF NOT EXISTS ioc_sketch_low AS (magnitude) ->
    ioc_sketch_width(magnitude) * (if(bitShiftRight(magnitude, 6) > 0, 64, 0) + bitAnd(magnitude, 63));

-- Representative value of a bucket index (streams.sketch.bucket_value).
CREATE FUNCTION IF NOT EXISTS ioc_sketch_value AS (index) ->
    if(toInt64(index) < 0, -1., 1.) * if(
        ioc_sketch_magnitude(index) >= 16320,
        inf,
        if(
            ioc_sketch_low(ioc_sketch_magnitude(index)) > 0,
            2 * ioc_sketch_low(ioc_sketch_magnitude(index))
              * (ioc_sketch_low(ioc_sketch_magnitude(index)) + ioc_sketch_width(ioc_sketch_magnitude(index)))
              / (2 * ioc_sketch_low(ioc_sketch_magnitude(index)) + ioc_sketch_width(ioc_sketch_magnitude(index))),
            0.
        )
    );

-- The q-quantile of a sketch; NULL when it is empty.
-- The CASTs pin the lambdas to one type: without them ClickHouse 26.9 reports "Recursive lambda"
-- when one query applies the function to maps of different types. Lambda variables carry a prefix
-- so that they cannot capture a column of the calling query.
CREATE FUNCTION IF NOT EXISTS ioc_sketch_quantile AS (sketch, q) -> if(
    arraySum(mapValues(CAST(sketch, 'Map(Int32, UInt64)'))) = 0,
    NULL,
    ioc_sketch_value(arrayElement(
        arraySort(mapKeys(CAST(sketch, 'Map(Int32, UInt64)'))),
        arrayFirstIndex(
            _ioc_c -> _ioc_c > floor(
                toFloat64(q) * greatest(toInt64(arraySum(mapValues(CAST(sketch, 'Map(Int32, UInt64)')))) - 1, 0) + 1e-9
            ),
            arrayCumSum(arraySort(
                (_ioc_c, _ioc_k) -> _ioc_k,
                mapValues(CAST(sketch, 'Map(Int32, UInt64)')),
                mapKeys(CAST(sketch, 'Map(Int32, UInt64)'))
            ))
        )
    ))
);
