"""The experiment spec: a YAML file in, a frozen, typed, fully resolved :class:`Spec` out.

Loading goes YAML text -> composed node tree (for line numbers) -> plain data ->
schema (pydantic, unknown keys refused everywhere) and tree checks, and the plugin
sections' parameters (``application``, every ``policy``, ``aggregation`` and ``codec``, ``data``) checked against the
plugin's own ``Params`` model by :mod:`edgetestbed.spec.appcheck` -> defaults merged ->
:class:`Spec`. Every problem found on the way is reported
at once, in one :class:`~edgetestbed.errors.SpecError`, one line per problem::

    topo.yaml:14: nodes[2].link.bw: '10MB' is not a bandwidth; expected bits per second like 10Mbit (MB would be bytes)

Who does what, in the order :func:`~edgetestbed.spec.load.load_spec` runs them:

- :mod:`~edgetestbed.spec.yamldoc`: YAML read safely and composed, every key and list item
  mapped to its line; duplicate keys, recursive or exploding aliases, deep nesting refused.
- :mod:`~edgetestbed.spec.schema`: the input grammar as pydantic models (``SpecIn`` and its
  sections), with the built-in defaults and bounds; the file format is documented there.
- :mod:`~edgetestbed.spec.explain`: pydantic's errors in the user's words, at the
  document's path (union tags dropped, list indices kept).
- :mod:`~edgetestbed.spec.tree`: one root, known parents, no cycles, sensors exactly on
  the leaves, none twice.
- :mod:`~edgetestbed.spec.appcheck`: the plugin sections' parameters against each plugin's
  own ``Params``.
- :mod:`~edgetestbed.spec.events`: the ``events`` timeline checked against the resolved tree
  and run (known link, within the run, no contradictions, a shaping that can change links)
  and resolved to :class:`~edgetestbed.spec.model.LinkEvent` and ``NodeEvent``, called by ``resolve``.
- :mod:`~edgetestbed.spec.problems`: where every problem is collected, placed at a line,
  and raised at once.
- :mod:`~edgetestbed.spec.resolve`: defaults merged, units resolved, the frozen
  :class:`~edgetestbed.spec.model.Spec` built; and back to the input for ``Spec.to_dict``.
- :mod:`~edgetestbed.spec.model`: the resolved spec (``Spec``, ``NodeSpec``, ``LinkSpec``,
  ...): what the rest of edgetestbed codes against.
- :mod:`~edgetestbed.spec.load`: ``load_spec`` and ``load_spec_text``, the entry points.
- :mod:`~edgetestbed.spec.plan`: the network a resolved spec describes (hosts, links,
  addresses, endpoints), pure; building it is :mod:`edgetestbed.topo`'s.

The value types a spec holds (``2s``, ``10Mbit``, ``256M``) are :mod:`edgetestbed.params`,
shared by the schema and by every plugin's parameter model (policies, codecs, partitions,
applications). The schema builds on the plugin registries (:mod:`edgetestbed.policies`,
:mod:`edgetestbed.codecs`, :mod:`edgetestbed.data.partitions`,
:mod:`edgetestbed.applications`), which sit below the spec and never import it.

Import the concrete module (``from edgetestbed.spec.model import Spec``, ``from
edgetestbed.spec.load import load_spec``): this package imports none of them itself.
"""
