"""The answer: given a bundle and feature rows, the calibrated flush probability per horizon,
its risk band, the likely direction, the exact reasons (TreeSHAP) and the warnings.

One home for what every consumer says: the HTTP service (`serving`), live operation (`live`),
the trader report (`reporting`) and the notebook API (`flushcast.api`) all ask
`forecast.predictor.Predictor`. It returns plain dataclasses (`forecast.answer`); the service
maps them to its HTTP schema. It needs neither MLflow nor BentoML: `ModelIdentity` is a small
dataclass the registry fills in.
"""
