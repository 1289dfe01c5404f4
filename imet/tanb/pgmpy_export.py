"""Export the label network to pgmpy, for users who want pgmpy's own inference."""

from __future__ import annotations

from imet.tanb.network import TreeNetwork


def to_pgmpy(network: TreeNetwork, *, node_names: str = "ids"):
    """A ``pgmpy.models.DiscreteBayesianNetwork`` with one ``TabularCPD`` a label.

    Nodes are named by attribute id as a string (``node_names="ids"``) or by
    label name (``"names"``); states are 0 (absent) and 1 (present). pgmpy's
    inference is generic and far slower than ``imet.tanb.inference`` on a
    tree of thousands of labels, but gives the same answers.
    """
    from pgmpy.factors.discrete import TabularCPD
    from pgmpy.models import DiscreteBayesianNetwork

    if node_names == "ids":
        names = [str(int(i)) for i in network.ids]
    elif node_names == "names":
        names = list(network.names)
    else:
        raise ValueError(f"node_names must be 'ids' or 'names', not {node_names!r}")
    if len(set(names)) != len(names):
        raise ValueError(f"label {node_names} are not unique; export with the other")

    model = DiscreteBayesianNetwork()
    model.add_nodes_from(names)
    model.add_edges_from(
        (names[network.parent[c]], names[c]) for c in network.order[1:]
    )
    states = [0, 1]
    root = network.root
    p_root = network.p_present[root, 1]
    cpds = [
        TabularCPD(
            names[root],
            2,
            [[1.0 - p_root], [p_root]],
            state_names={names[root]: states},
        )
    ]
    for child in network.order[1:]:
        parent = network.parent[child]
        p0, p1 = network.p_present[child]
        cpds.append(
            TabularCPD(
                names[child],
                2,
                # columns: parent absent, parent present
                [[1.0 - p0, 1.0 - p1], [p0, p1]],
                evidence=[names[parent]],
                evidence_card=[2],
                state_names={names[child]: states, names[parent]: states},
            )
        )
    model.add_cpds(*cpds)
    model.check_model()
    return model
