"""Create the IOC topics on the compose Kafka: the worker never declares topics itself
(`topic_allow_declare=False` in streams/app.py), and auto-creation is off on the broker so that
every topic gets IOC_TOPIC_PARTITIONS partitions (the most workers `--scale` can keep busy)."""

import os

from ioc.broker import create_topics
from models.events import ALL_TOPICS

if __name__ == "__main__":
    url = os.environ.get("IOC_BROKER_URL", "kafka://kafka:9092")
    partitions = int(os.environ.get("IOC_TOPIC_PARTITIONS", "8"))
    create_topics(url, ALL_TOPICS, partitions)
    print(f"topics ready on {url}: {', '.join(ALL_TOPICS)} ({partitions} partitions)")
