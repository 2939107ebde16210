"""Who produces and who reads each tensor of an ONNX graph: the one index the graph passes
(edgegan.export.qdq_pads, depth_to_space, norm_rewrite) build before they match patterns."""
from __future__ import annotations

import dataclasses


@dataclasses.dataclass
class GraphIndex:
    producer: dict  # tensor name -> the node that writes it
    consumers: dict  # tensor name -> the nodes that read it, in graph order
    initializers: dict  # name -> TensorProto
    outputs: set  # the graph's output names

    @classmethod
    def of(cls, graph) -> "GraphIndex":
        consumers: dict = {}
        for n in graph.node:
            for i in n.input:
                consumers.setdefault(i, []).append(n)
        return cls(producer={o: n for n in graph.node for o in n.output}, consumers=consumers,
                   initializers={t.name: t for t in graph.initializer}, outputs={o.name for o in graph.output})

    def uses(self, name: str) -> int:
        """How many node inputs read ``name`` (a node reading it twice counts twice)."""
        return sum(list(n.input).count(name) for n in self.consumers.get(name, ()))
