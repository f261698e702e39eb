"""Live operation of the service: its own market state, risk by symbol, alerts, monitoring, reloads.

Built on the HTTP service (`serving`): the live engine (`live.engine`) scores the store's latest
bars with the served model, caches the risk (`live.risk`), logs every prediction
(`live.predictions_log`), fires alerts (`live.alerts`), follows the venue's clock (`live.clock`)
and measures the live forecasts against the walk-forward (`live.monitor`); its routes
(`live.routes`) and metrics (`live.metrics`) are added to the service by `flushcast.service`.
`flushcast serve --live DIR` turns it on (`live.cli`).
"""
