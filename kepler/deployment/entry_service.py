"""The module ``bentoml serve`` imports: ``KeplerService``, the Kepler service configured for this process.

BentoML finds a bento's service as an attribute of the module it imports, so configuring here, at import, is
this module's one job: the settings come from the bento's arguments and ``KEPLER_<NAME>`` variables
(:func:`kepler.deployment.service.settings`), the server fixes are installed for the release, and the service
is made. Code that wants the service's parts without those effects imports :mod:`kepler.deployment.service`
and calls :func:`~kepler.deployment.service.configure` itself.
"""

from __future__ import annotations

from kepler.deployment.service import configure, install_server_fixes, settings

SETTINGS = settings()
install_server_fixes(SETTINGS["release"])
KeplerService = configure(SETTINGS)
