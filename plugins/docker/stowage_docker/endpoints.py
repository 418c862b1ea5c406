"""The registry's endpoints with the action each method performs, declared for core (see
:class:`stowage.plugin.Endpoint`): core matches every request below a docker repository against them and
checks permission, write policy and name policy (the image name) before the registry's code runs.

Paths are below the repository: ``v2/<image>/manifests/<reference>`` whichever way the client came
(``/repository/<repo>/v2/...``, ``/v2/<repo>/...`` or a repository's own port).
"""

from __future__ import annotations

from stowage.plugin import Action, Endpoint

READ = {"GET": Action.READ, "HEAD": Action.READ}

#: in the order they are tried: an upload path also ends like a blob path.
ENDPOINTS = (
    # GET /v2/ and the token service answer callers themselves (a challenge is how a client starts).
    Endpoint("base", r"v2/?", {"GET": None, "HEAD": None}),
    Endpoint("token", r"v2/token", {"GET": None, "POST": None}),
    Endpoint("catalog", r"v2/_catalog", READ),
    # Blob paths are content-addressed and a tag is checked against ALLOW_ONCE on its body (a re-push of
    # the same manifest is no update), in the transaction that records it: no endpoint is ``once``.
    Endpoint("uploads", r"v2/(?P<name>.+)/blobs/uploads/?", {"POST": Action.WRITE}, artifact="name", once=False),
    Endpoint("upload", r"v2/(?P<name>.+)/blobs/uploads/(?P<upload>[^/]+)",
             {"GET": Action.READ, "PATCH": Action.WRITE, "PUT": Action.WRITE, "DELETE": Action.DELETE},
             artifact="name", once=False),
    Endpoint("blob", r"v2/(?P<name>.+)/blobs/(?P<digest>[^/]+)", {**READ, "DELETE": Action.DELETE},
             artifact="name", once=False),
    Endpoint("manifest", r"v2/(?P<name>.+)/manifests/(?P<reference>[^/]+)",
             {**READ, "PUT": Action.WRITE, "DELETE": Action.DELETE}, artifact="name", once=False),
    Endpoint("tags", r"v2/(?P<name>.+)/tags/list", READ),
    Endpoint("referrers", r"v2/(?P<name>.+)/referrers/(?P<digest>[^/]+)", READ),
)
