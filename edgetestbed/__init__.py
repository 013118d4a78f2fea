"""edgetestbed: measure distributed learning on emulated edge hierarchies.

A YAML tree of sensors, workers, parameter servers and a root becomes a real
emulated network (Mininet); real processes train and exchange models over it;
the run measures what crossed each link and what each node learned.
"""

__version__ = "0.1.0"
