"""edgetestbed: measure distributed learning on emulated edge hierarchies."""
from setuptools import find_packages, setup

setup(
    name="edgetestbed",
    version="0.1.0",
    description=("Emulate a hierarchy of edge nodes on a real Mininet network, "
                 "train across it and measure what it costs and buys."),
    packages=find_packages(include=["edgetestbed", "edgetestbed.*"]),
    python_requires=">=3.9",
    # mininet and os-ken come from the distribution (apt); see scripts/install.
    install_requires=[
        "pydantic>=2.5",
        "pyyaml>=6",
        "numpy>=1.24",
        "pyzmq>=25",
        "scapy>=2.5",
        "matplotlib>=3.6",
        "NetfilterQueue>=1.1",
    ],
    extras_require={"test": ["pytest>=7", "import-linter>=2"]},
    entry_points={"console_scripts": ["edgetestbed=edgetestbed.cli:main"]},
)
