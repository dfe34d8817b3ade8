"""What every Podium service shares: typed config, JSON logging, names, errors, migrations."""
