"""The TANB tree around one label, as a Plotly network.

A tree over thousands of labels cannot be read drawn whole, so the graph shows
the labels within ``hops`` edges of a centre label, closest first, up to
``max_nodes``; the caption says how many were left out.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import networkx as nx
import numpy as np
import plotly.graph_objects as go

_PALETTE = ("#8c2d19", "#1f6f8b", "#6a994e", "#b08400", "#7b4b94", "#555555")


@dataclass(frozen=True)
class Neighbourhood:
    """Columns within a few hops of a centre column of the tree."""

    centre: int  # column of the centre label
    nodes: list[int]  # columns, centre first, then by distance
    hops: dict[int, int]  # column -> edges from the centre
    edges: list[tuple[int, int]]  # (parent column, child column) among nodes
    left_out: int  # columns within reach that were not drawn


def neighbourhood(
    parent: np.ndarray, centre: int, *, hops: int = 2, max_nodes: int = 80
) -> Neighbourhood:
    """Breadth-first walk over the undirected tree from ``centre``.

    ``parent``: (L,) parent column of each column, -1 at the root."""
    children: dict[int, list[int]] = {}
    for child, up in enumerate(parent.tolist()):
        if up >= 0:
            children.setdefault(up, []).append(child)
    distance = {centre: 0}
    queue = deque([centre])
    reached = 0
    while queue:
        node = queue.popleft()
        if distance[node] == hops:
            continue
        around = children.get(node, []) + (
            [int(parent[node])] if parent[node] >= 0 else []
        )
        for other in around:
            if other in distance:
                continue
            reached += 1
            if len(distance) < max_nodes:
                distance[other] = distance[node] + 1
                queue.append(other)
    nodes = list(distance)
    kept = set(nodes)
    edges = [(int(parent[c]), c) for c in nodes if parent[c] >= 0 and parent[c] in kept]
    return Neighbourhood(centre, nodes, distance, edges, reached + 1 - len(nodes))


def figure(
    area: Neighbourhood,
    names: list[str],
    mi: np.ndarray,
    categories: list[str],
) -> go.Figure:
    """Nodes coloured by category, the centre enlarged; edge width grows with
    the mutual information (``mi[child]``, nats) shown on hover."""
    graph = nx.Graph()
    graph.add_nodes_from(area.nodes)
    graph.add_edges_from(area.edges)
    # Kamada-Kawai lays small trees out without crossings and deterministically.
    position = (
        nx.kamada_kawai_layout(graph) if len(area.nodes) > 1 else {area.centre: (0, 0)}
    )
    top = float(max((mi[c] for _, c in area.edges), default=0.0)) or 1.0
    traces: list[go.Scatter] = []
    for up, child in area.edges:
        (x0, y0), (x1, y1) = position[up], position[child]
        traces.append(
            go.Scatter(
                x=[x0, x1],
                y=[y0, y1],
                mode="lines",
                hoverinfo="skip",
                line={"width": 1 + 6 * float(mi[child]) / top, "color": "#bbbbbb"},
                showlegend=False,
            )
        )
    # Invisible markers at edge midpoints carry the hover text of each edge.
    traces.append(
        go.Scatter(
            x=[(position[u][0] + position[c][0]) / 2 for u, c in area.edges],
            y=[(position[u][1] + position[c][1]) / 2 for u, c in area.edges],
            mode="markers",
            marker={"size": 8, "opacity": 0},
            hoverinfo="text",
            text=[
                f"{names[u]} → {names[c]}<br>MI {mi[c]:.4f} nats" for u, c in area.edges
            ],
            showlegend=False,
        )
    )
    colour_of = {
        c: _PALETTE[i % len(_PALETTE)] for i, c in enumerate(sorted(set(categories)))
    }
    for category, colour in colour_of.items():
        members = [n for n in area.nodes if categories[n] == category]
        if not members:
            continue
        traces.append(
            go.Scatter(
                x=[position[n][0] for n in members],
                y=[position[n][1] for n in members],
                mode="markers+text",
                marker={
                    "size": [26 if n == area.centre else 13 for n in members],
                    "color": colour,
                    "line": {"width": 1, "color": "white"},
                },
                text=[names[n].split("::", 1)[-1] for n in members],
                textposition="top center",
                hovertext=[f"{names[n]} ({area.hops[n]} hops)" for n in members],
                hoverinfo="text",
                name=category,
            )
        )
    fig = go.Figure(traces)
    fig.update_layout(
        height=520,
        margin={"l": 0, "r": 0, "t": 10, "b": 0},
        xaxis={"visible": False},
        yaxis={"visible": False},
        legend={"orientation": "h"},
        plot_bgcolor="white",
    )
    return fig
