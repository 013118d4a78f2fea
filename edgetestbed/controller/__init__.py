"""The OpenFlow controller of runs on OVS switches: forwarding for the tree, and port statistics.

Modules: ``app`` (the OpenFlow 1.3 application, written against the Ryu API),
``compat`` (that API from Ryu or from os-ken, its maintained fork: one source for both),
``service`` (start the controller on loopback for a run, attach the switches, stop it),
``jsonlines`` (the files it writes while others read them).
"""

# Controller frameworks with the Ryu API, in order of preference, and their manager scripts.
FRAMEWORKS = {"ryu": "ryu-manager", "os_ken": "osken-manager"}
# The environment variable that names the app's configuration file (see ``app``).
CONFIG_ENV = "EDGETESTBED_CONTROLLER_CONFIG"
# What a switch reports for a counter it cannot give (OpenFlow port stats; seen during shutdown).
UNAVAILABLE = 2 ** 64 - 1
