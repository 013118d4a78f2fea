"""``aqi``: predicts the hour's PM2.5 (µg/m³) from weather and recent PM2.5 (Beijing data).

The inputs arrive standardized (see ``data.streams``); the network predicts
``PM2.5 / target_scale`` so that SGD steps are well conditioned, and reports RMSE in
µg/m³. A fixed scale (not one estimated from local data) keeps the weights of all
nodes comparable and mergeable. By default it is a linear regression (``hidden: []``),
which on this data does as well as the small networks ``hidden`` allows (RMSE ≈ 22 on
2014 after 3 epochs over 2010–2013, where predicting the previous hour gives 22.1 and
predicting the mean 93.5).
"""

from __future__ import annotations

from typing import Any, ClassVar, Dict, List, Literal

import numpy as np
from pydantic import Field, PositiveFloat, PositiveInt

from edgetestbed.applications import network
from edgetestbed.applications.metrics import regression_scores


class AqiRegressorParams(network.DenseParams):
    """The spec's ``application:`` keys for ``aqi``."""

    inputs: PositiveInt = 13  # the streams' 10 weather features + the data section's ``lags`` (3)
    hidden: List[PositiveInt] = Field([], description="hidden layer sizes like [16], or [] for a "
                                                      "linear regression")
    activation: Literal["sigmoid", "tanh", "relu"] = "relu"
    learning_rate: PositiveFloat = 0.03
    batch_size: PositiveInt = 32
    target_scale: PositiveFloat = 100.0


class AqiRegressor(network.DenseApplication):
    """PM2.5 regressor: a linear model or small fully connected network with one linear output."""

    dataset: ClassVar[str] = "aqi"
    Params: ClassVar[type] = AqiRegressorParams
    n_outputs = 1
    loss = staticmethod(network.squared_error)

    @property
    def n_inputs(self) -> int:
        return self.params.inputs

    def _targets(self, y: np.ndarray) -> np.ndarray:
        return (np.asarray(y, dtype=np.float32) / np.float32(self.params.target_scale))[:, None]

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Predicted PM2.5 for each row of ``x``."""
        return self._output(x)[:, 0] * self.params.target_scale

    def evaluate(self, x: np.ndarray, y: np.ndarray) -> Dict[str, Any]:
        """RMSE and MAE in µg/m³; ``score`` is −RMSE."""
        return regression_scores(self.predict(x), y)
