"""Every RPC of the skills service declares a permission."""

from google.protobuf import descriptor_pool

from services.skills.api.permissions import PERMISSIONS
from services.skills.main import SERVICE_NAMES


def test_every_rpc_declares_a_permission():
    pool = descriptor_pool.Default()
    methods = {f"/{name}/{m.name}" for name in SERVICE_NAMES for m in pool.FindServiceByName(name).methods}
    assert methods == set(PERMISSIONS)
    assert len(SERVICE_NAMES) == 3
