"""The MLflow face of a bundle: one pyfunc model whose only artefact is the bundle folder.

It is logged as code (`models/mlflow_entry.py`, MLflow's "models from code"), not as a pickle;
the models travel as the bundle's plain files, so `Bundle.load` on the downloaded folder is all
a consumer needs.
Whoever can write the artefact store can change that code, and it runs in every consumer that
loads the model with `mlflow.pyfunc.load_model` (see the README's security notes); flushcast's
own loaders download the bundle's files and never run it.
`predict` takes feature rows (the `features` registry columns plus `symbol`) and returns the
calibrated probabilities per horizon.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow.pyfunc
import pandas as pd

from flushcast.models.bundle import Bundle

ARTIFACT = "bundle"
ENTRY = Path(__file__).with_name("mlflow_entry.py")


class FlushcastModel(mlflow.pyfunc.PythonModel):
    """Loads the bundle from the model's artefacts; predicts from feature rows."""

    def load_context(self, context: Any) -> None:
        # Bundle.load checks every file's SHA-256 first: no unverified bytes reach LightGBM.
        self.bundle = Bundle.load(context.artifacts[ARTIFACT])

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.DataFrame:
        return self.bundle.predict(model_input)


def bundle_folder(model_dir: str | Path) -> Path:
    """Where the bundle sits inside a downloaded MLflow model folder."""
    matches = sorted(Path(model_dir).glob(f"artifacts/{ARTIFACT}*/bundle.json"))
    if not matches:
        raise FileNotFoundError(f"no flushcast bundle inside MLflow model folder {model_dir}")
    return matches[0].parent
