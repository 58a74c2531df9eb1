-- Geography and network topology of the reference data (models/reference.py): areas, approximate
-- coordinates for the wall's map, and each node's uplink in the network tree (an outage of a node cuts
-- off everything below it: the incident engine groups such outages into one incident).
-- `geo_accuracy` says how far to trust a position; the bundled data is 'approximate' (synthetic communes
-- placed near their district's real centroid).

ALTER TABLE dim_communes ADD COLUMN IF NOT EXISTS area LowCardinality(String) DEFAULT '';
ALTER TABLE dim_communes ADD COLUMN IF NOT EXISTS latitude Nullable(Float64);
ALTER TABLE dim_communes ADD COLUMN IF NOT EXISTS longitude Nullable(Float64);
ALTER TABLE dim_communes ADD COLUMN IF NOT EXISTS geo_accuracy LowCardinality(String) DEFAULT '';

ALTER TABLE dim_centers ADD COLUMN IF NOT EXISTS latitude Nullable(Float64);
ALTER TABLE dim_centers ADD COLUMN IF NOT EXISTS longitude Nullable(Float64);
ALTER TABLE dim_centers ADD COLUMN IF NOT EXISTS geo_accuracy LowCardinality(String) DEFAULT '';

ALTER TABLE dim_nodes ADD COLUMN IF NOT EXISTS uplink Nullable(String);
ALTER TABLE dim_nodes ADD COLUMN IF NOT EXISTS area Nullable(String);
ALTER TABLE dim_nodes ADD COLUMN IF NOT EXISTS latitude Nullable(Float64);
ALTER TABLE dim_nodes ADD COLUMN IF NOT EXISTS longitude Nullable(Float64);
ALTER TABLE dim_nodes ADD COLUMN IF NOT EXISTS geo_accuracy LowCardinality(String) DEFAULT '';
