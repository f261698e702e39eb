"""flushcast: forecasts and explains crypto liquidation cascades."""
