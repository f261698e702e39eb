"""Live collectors: long-running clients of the exchanges' public APIs that keep a store current.

    flushcast collect binance --symbols BTCUSDT,ETHUSDT --store live-store
    flushcast collect bybit   --symbols BTCUSDT --store live-store

On start a collector backfills closed klines, open interest and funding over REST from the
store's last bar (or `--backfill-days` back for a new symbol), then follows the venue's public
liquidation stream over a websocket and, at every bar close, fetches the closed bar and writes it
with that bar's liquidation totals through the store's normal ingest path (merge with what is
stored, validate, atomic write). A bar is written once, when it is complete: late or duplicate
messages never change a stored bar, a reconnect leaves the bars it interrupted without
liquidation totals (unknown, not zero) and says so, and a bar the venue never published stays a
reported gap. Times follow the venue's own clock (its server-time endpoint), so a replay at any
speed (the tests' fake exchange) runs the same code as the real venue.

Modules: `venue` (what a venue must provide), `binance` and `bybit` (their REST and websocket
formats), `book` (liquidation events to per-bar totals with coverage), `clock`, `rest`,
`writer` (the store write) and `collector` (the loop). No module here imports serving or
training: collectors are market data.
"""
