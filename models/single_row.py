"""One row through a LightGBM booster without `Booster.predict`'s per-call cost.

A served feature row is one row, and `Booster.predict` spends about 40 µs a call on Python
(parameter copies, array checks, a count of outputs, a fresh predictor) around a raw score that
takes 2 µs, or 25 µs of TreeSHAP: with a score, a direction and contributions per horizon that
was most of a /predict answer. LightGBM's C API has a prepared single-row call for this
(`LGBM_BoosterPredictForMatSingleRowFast`): the same predictor code on one row, so the numbers
are the ones `Booster.predict` gives, bit for bit (`tests/training/test_single_row.py`).
`GradientBoosting` uses it for every one-row call; batches keep `Booster.predict`. It calls the
library handle `Booster` itself calls (`lightgbm.basic._LIB`, not public API): that test fails
if an upgrade of the pinned LightGBM changes either path.
"""

from __future__ import annotations

import ctypes
import threading
import weakref

import lightgbm as lgb
import numpy as np
from lightgbm.basic import _LIB, _c_str, _safe_call

RAW_SCORE = 1
CONTRIB = 3
"""LightGBM's C API predict types (`C_API_PREDICT_RAW_SCORE`, `C_API_PREDICT_CONTRIB`)."""
_FLOAT64 = 1
_DOUBLE_P = ctypes.POINTER(ctypes.c_double)


def _free(handle: ctypes.c_void_p, booster: lgb.Booster) -> None:
    """Free a prepared call; `booster` is passed so it outlives the call that points at it."""
    _safe_call(_LIB.LGBM_FastConfigFree(handle))


class SingleRow:
    """A booster's prepared one-row calls (raw score, contributions), one at a time.

    Each prepared call writes into buffers kept here (the row in, the answer out), so calls
    take a lock: the service scores rows on its event loop and in a worker thread.
    """

    def __init__(self, booster: lgb.Booster) -> None:
        self.booster = booster
        self.columns = booster.num_feature()
        self._row = np.empty(self.columns)
        self._row_pointer = ctypes.c_void_p(self._row.ctypes.data)
        self._length = ctypes.c_int64(0)
        self._calls: dict[int, tuple[ctypes.c_void_p, np.ndarray, object]] = {}
        self._lock = threading.Lock()

    def _call(self, kind: int) -> tuple[ctypes.c_void_p, np.ndarray, object]:
        """The prepared call of this kind, its output buffer and a pointer to that."""
        call = self._calls.get(kind)
        if call is None:
            handle = ctypes.c_void_p()
            _safe_call(
                _LIB.LGBM_BoosterPredictForMatSingleRowFastInit(
                    self.booster._handle,
                    ctypes.c_int(kind),
                    ctypes.c_int(0),  # start iteration
                    ctypes.c_int(-1),  # every iteration, as `Booster.predict` without a best one
                    ctypes.c_int(_FLOAT64),
                    ctypes.c_int32(self.columns),
                    _c_str("num_threads=1"),
                    ctypes.byref(handle),
                )
            )
            weakref.finalize(self, _free, handle, self.booster)
            out = np.empty(1 if kind == RAW_SCORE else self.columns + 1)
            call = self._calls[kind] = (handle, out, out.ctypes.data_as(_DOUBLE_P))
        return call

    def predict(self, row: np.ndarray, kind: int) -> np.ndarray:
        """What `Booster.predict` returns for the one-row matrix `row[None]`: its raw score
        (shape 1) or its contributions (1 × columns + 1)."""
        with self._lock:
            handle, out, pointer = self._call(kind)
            self._row[:] = row
            _safe_call(
                _LIB.LGBM_BoosterPredictForMatSingleRowFast(
                    handle, self._row_pointer, ctypes.byref(self._length), pointer
                )
            )
            if self._length.value != len(out):
                raise ValueError(f"LightGBM gave {self._length.value} values, not {len(out)}")
            return out.copy() if kind == RAW_SCORE else out.reshape(1, -1).copy()
