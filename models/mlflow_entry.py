"""MLflow "model from code" entry point: logged as the model's code instead of a pickle."""

from mlflow.models import set_model

from flushcast.models.pyfunc import FlushcastModel

set_model(FlushcastModel())
