"""Channel-layer group names: built from ids, valid for every channel layer."""


def inventory_group_name(inventory_id: int) -> str:
    """Name the group of everyone connected to one inventory's room."""
    return f"inventory.{int(inventory_id)}"
