"""Channel-layer group names: built from ids, valid for every channel layer."""


def inventory_group_name(inventory_id: int) -> str:
    """Name the group of everyone connected to one inventory's room."""
    return f"inventory.{int(inventory_id)}"


def user_group_name(user_id) -> str:
    """Name the group of every socket of one user, in any room, on any instance."""
    return f"user.{int(user_id)}"
