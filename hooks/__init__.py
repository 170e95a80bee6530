"""The CDS services and the clinical knowledge behind them. No I/O here: see README.md."""
