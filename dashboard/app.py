"""Entry point of the dashboard: ``streamlit run dashboard/app.py``.

It only builds the navigation; each page is a file in ``pages/``.
"""

from pathlib import Path

import streamlit as st

PAGES_DIR = Path(__file__).resolve().parent.parent / "pages"

# (file, title, icon) in the order of the navigation menu.
PAGES = (
    ("overview.py", "Overview", ":material/dashboard:"),
    ("predictions.py", "Predictions", ":material/grid_view:"),
    ("labels.py", "Labels", ":material/sell:"),
    ("tanb.py", "TANB tree", ":material/account_tree:"),
    ("saliency.py", "Saliency", ":material/visibility:"),
    ("bias.py", "Label bias", ":material/report:"),
    ("your_image.py", "Your image", ":material/upload:"),
)

st.set_page_config(page_title="imet", page_icon=":material/palette:", layout="wide")
navigation = st.navigation(
    [
        st.Page(PAGES_DIR / file, title=title, icon=icon, default=i == 0)
        for i, (file, title, icon) in enumerate(PAGES)
    ]
)
navigation.run()
