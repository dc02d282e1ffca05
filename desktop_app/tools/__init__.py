"""What runs the app without a person at it: the screenshot pass (``histoguard gui --screenshots``) and the
installed app's self-test (``histoguard --self-test``). They build the window with ``desktop_app.app`` and are
started by ``desktop_app.launcher``; nothing in the app imports them."""
