"""pitchlab dashboard: every page the signed-in person's role may open (board, athlete, what-if, compare, pose, models, forms).

Serve with the local sign-in (argon2-checked against the users table; accounts via `pitchlab users add`):

    export PANEL_COOKIE_SECRET=$(python -c "import secrets; print(secrets.token_urlsafe(32))")
    panel serve dashboards/app.py dashboards/coach.py dashboards/medical.py dashboards/athlete.py \
        --plugins pitchlab.dash.auth --oauth-provider pitchlab --setup dashboards/warm.py \
        --address 127.0.0.1 --port 5006 --allow-websocket-origin 127.0.0.1:5006

`--setup dashboards/warm.py` computes every account's metrics before the first visitor (optional). With an OAuth
provider instead (see nbs/60_dash_auth.ipynb): --oauth-provider auth0|azurev2|google|generic plus its settings.
"""

import panel as pn

from pitchlab.dash.app import serve_app

if pn.state.served:
    serve_app(title="pitchlab").servable(
        title="pitchlab", location=False
    )  # no URL sync (pitchlab reads no query): one model fewer
