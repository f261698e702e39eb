"""Market-data ingestion: real exports and downloads become the canonical hourly market frame."""
