#!/bin/sh
# docker-compose `simulator`: generate a calibrated load, then replay it into Kafka.
# By default the whole of yesterday (local time, Asia/Ho_Chi_Minh) at full speed, so the wall has a
# complete day to show within a minute: open it for yesterday (see README "Run the full stack").
set -eu
start="${IOC_SIM_START:-}"
if [ -z "$start" ]; then
    start=$(TZ=Asia/Ho_Chi_Minh date -d yesterday +%F)
fi
ioc simulate --scenario "${IOC_SIM_SCENARIO:-default}" --start "$start" --hours "${IOC_SIM_HOURS:-24}" \
    --seed "${IOC_SIM_SEED:-7}" --out /data/sim --quiet
exec ioc replay /data/sim --speed "${IOC_REPLAY_SPEED:-max}" --format "${IOC_REPLAY_FORMAT:-json}" --quiet
