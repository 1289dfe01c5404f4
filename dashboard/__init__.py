"""The Streamlit dashboard: shared parts used by the page files in ``pages/``.

``dashboard/app.py`` builds the navigation; every page reads run folders through
the cached, typed loaders of :mod:`dashboard.loaders`, keeps the view's state
in the URL through :mod:`dashboard.state`, and draws with :mod:`dashboard.ui`
and :mod:`dashboard.charts`.
"""
