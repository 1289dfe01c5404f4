"""TANB tree: a label's neighbourhood in the learned tree, edge mutual
information and tables, and what the network did to one image's labels."""

import pandas as pd
import streamlit as st

from dashboard import loaders, screening, state, tree_graph, ui


def centre_label(names: list[str], run: loaders.RunInfo) -> str:
    """Search box plus a choice among the matches; the choice is in the URL."""
    query = st.text_input(
        "Find a label", value=state.get("q", ""), placeholder="e.g. hourglass"
    )
    state.put("q", query)
    matches = [n for n in names if query.lower() in n.lower()] or names
    if query and matches is names:
        st.caption(f"No label contains “{query}”; showing all.")
    return state.select("Centre the graph on", matches, "label", scope=run.name)


def edge_table(tree, area: tree_graph.Neighbourhood) -> pd.DataFrame:
    rows = [
        {
            "parent": tree.names[up],
            "child": tree.names[child],
            "MI (nats)": round(float(tree.mi[child]), 5),
            "P(child | parent absent)": round(float(tree.p_present[child, 0]), 4),
            "P(child | parent present)": round(float(tree.p_present[child, 1]), 4),
        }
        for up, child in area.edges
    ]
    return pd.DataFrame(rows).sort_values("MI (nats)", ascending=False)


def conditional_table(tree, child: int) -> pd.DataFrame:
    """The 2x2 table P(child | parent) of the edge into ``child``."""
    p = tree.p_present[child]
    parent = tree.names[tree.parent[child]]
    return pd.DataFrame(
        {
            f"{tree.names[child]} absent": [1 - p[0], 1 - p[1]],
            f"{tree.names[child]} present": [p[0], p[1]],
        },
        index=[f"{parent} absent", f"{parent} present"],
    ).round(4)


def graph_section(run: loaders.RunInfo, tree) -> tree_graph.Neighbourhood:
    labels = loaders.load_labels(run.path)
    centre = tree.names.index(centre_label(tree.names, run))
    hops = st.slider("Hops from the centre", 1, 4, 2, key="hops")
    area = tree_graph.neighbourhood(tree.parent, centre, hops=hops, max_nodes=80)
    categories = [n.split("::", 1)[0] if "::" in n else "other" for n in tree.names]
    st.plotly_chart(tree_graph.figure(area, tree.names, tree.mi, categories))
    st.caption(
        f"{len(area.nodes)} of {tree.n_labels} labels drawn"
        + (
            f"; {area.left_out} more within {hops} hops left out"
            if area.left_out
            else ""
        )
        + f". Root of the tree: {tree.names[tree.root]}. Model labels: "
        f"{len(labels.names)}."
    )
    return area


def render() -> None:
    run = ui.pick_run()
    tree = loaders.load_tree(run.path)
    area = graph_section(run, tree)
    left, right = st.columns([3, 2])
    with left:
        st.markdown("**Edges shown, by mutual information**")
        table = edge_table(tree, area)
        st.dataframe(table, hide_index=True, height=260)
    with right:
        if area.edges:
            children = [c for _, c in area.edges]
            child = st.selectbox(
                "Conditional table of the edge into",
                children,
                format_func=lambda c: f"{tree.names[tree.parent[c]]} → {tree.names[c]}",
                key=f"edge@{run.name}",
            )
            st.dataframe(conditional_table(tree, child))
        else:
            st.info("The centre label has no edge (a tree of one label).")
    screening.image_section(run, tree)


ui.page("TANB tree", render)
