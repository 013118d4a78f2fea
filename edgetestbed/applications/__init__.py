"""Learning tasks behind one interface: the seeds' MNIST MLP, an AQI regressor, a parity SVM.

``create_application(name, params, seed)`` builds one by name (``mnist_mlp``, ``svm``,
``aqi``) or by ``module:Class``; ``weighted_average`` merges updates on parameter servers.
"""

from edgetestbed.applications.base import (Application, ApplicationParams, SGDApplication, SGDParams,
                                           validate_arrays, weighted_average)
from edgetestbed.applications.registry import BUILTIN, application_class, create_application

__all__ = ["Application", "ApplicationParams", "SGDApplication", "SGDParams", "BUILTIN",
           "application_class", "create_application", "validate_arrays", "weighted_average"]
