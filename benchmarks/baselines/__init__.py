"""The peer baselines of `ioc bench pipeline`: the same workload written the way each framework's docs show."""
