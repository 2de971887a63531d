"""pitchlab for coaches: team risk board, athlete drill-down (no cycle or injury detail), what-if planner, compare, pose, models, forms.

Served like dashboards/app.py (see its docstring); admins may open it too.
"""

import panel as pn

from pitchlab.dash.app import serve_app

if pn.state.served:
    serve_app(roles=("coach", "admin"), title="pitchlab: coach").servable(
        title="pitchlab: coach", location=False
    )  # no URL sync (pitchlab reads no query): one model fewer
