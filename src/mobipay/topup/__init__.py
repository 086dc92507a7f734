"""Phone-bill top-up: any mainland number, through the home operator's billing system or an aggregator."""
