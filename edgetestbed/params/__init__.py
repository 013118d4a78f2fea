"""The vocabulary a plugin declares its parameters in: value types, and the registries.

An application, an exchange policy, a codec or a data partition declares its parameters as a
pydantic model, with the same value types the spec's own schema uses, and registers
itself by name; the spec, built above, takes its names, suggestions and parameter checks
from here. This package sits below all of them and imports nothing from edgetestbed but
:mod:`edgetestbed.errors`.

Who does what:

- :mod:`~edgetestbed.params.units`: the physical quantities (``10Mbit``, ``2s``, ``1%``,
  ``256M``), parsed strictly and written back.
- :mod:`~edgetestbed.params.fields`: those quantities and bounded numbers as pydantic field
  types (``Interval``, ``count``, ``share``, ...), pydantic's errors in ``validate``'s
  words, and did-you-mean suggestions.
- :mod:`~edgetestbed.params.plugins`: what a plugin declares (``Plugin``,
  ``PluginParams``), the :class:`~edgetestbed.params.plugins.Registry` of one kind of
  plugin (names, ``module:Class``, discovery of a package's modules), and parsing a
  plugin's parameters.

Import the concrete module (``from edgetestbed.params.fields import count``).
"""
