"""moto in server mode, extended with the Identity Store operations moto 5.2.5 lacks.

    python tests/aws/moto_server.py PORT

Adds, on moto's own response and backend classes (reference aws-identity-center.md §6.5):
- UpdateUser: AttributeOperations on userName (unique), displayName, name and its parts,
  nickName, profileUrl, userType, title, preferredLanguage, locale, timezone, emails,
  addresses, phoneNumbers and the enterprise extension (`aws:identitystore:enterprise[.key]`);
  an operation without AttributeValue removes the attribute. Empty strings are refused as the
  real service refuses them (ValidationException).
- UpdateGroup: displayName (unique) and description.
- Extensions (`aws:identitystore:enterprise`) on CreateUser, kept beside the user and returned
  by DescribeUser when asked for, which moto itself drops.
Extension state lives on the backend instance, so `POST /moto-api/reset` clears it too.
"""

import sys
import threading

from moto.identitystore.exceptions import (
    ConflictException,
    ResourceNotFoundException,
    ValidationException,
)
from moto.identitystore.models import IdentityStoreBackend, Name
from moto.identitystore.responses import IdentityStoreResponse
from moto.server import ThreadedMotoServer
import json

ENTERPRISE = "aws:identitystore:enterprise"

# Identity Store attribute path -> field of moto's User tuple.
USER_FIELDS = {
    "username": "UserName",
    "displayname": "DisplayName",
    "nickname": "NickName",
    "profileurl": "ProfileUrl",
    "usertype": "UserType",
    "title": "Title",
    "preferredlanguage": "PreferredLanguage",
    "locale": "Locale",
    "timezone": "Timezone",
    "emails": "Emails",
    "addresses": "Addresses",
    "phonenumbers": "PhoneNumbers",
}
NAME_PARTS = {
    "formatted": "Formatted",
    "familyname": "FamilyName",
    "givenname": "GivenName",
    "middlename": "MiddleName",
    "honorificprefix": "HonorificPrefix",
    "honorificsuffix": "HonorificSuffix",
}


def pascal(value):
    """Document keys as the service stores them: `value` -> `Value` (recursively)."""
    if isinstance(value, dict):
        return {k[:1].upper() + k[1:]: pascal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [pascal(v) for v in value]
    return value


def check_not_empty(path, value):
    if value == "" or value == [] or value == {}:
        raise ValidationException(message=f"AttributeValue for {path} must not be empty")
    if isinstance(value, dict):
        for k, v in value.items():
            check_not_empty(f"{path}.{k}", v)
    if isinstance(value, list):
        for v in value:
            check_not_empty(path, v)


def store_of(backend, identity_store_id):
    return backend._IdentityStoreBackend__get_identity_store(identity_store_id)


def extensions_of(backend):
    if not hasattr(backend, "scimbridge_extensions"):
        backend.scimbridge_extensions = {}
    return backend.scimbridge_extensions


def update_user(self, identity_store_id, user_id, operations):
    store = store_of(self, identity_store_id)
    user = store.users.get(user_id)
    if user is None:
        raise ResourceNotFoundException(message="USER not found.", resource_type="USER")
    if not operations or len(operations) > 100:
        raise ValidationException(message="Operations must hold 1 to 100 entries")
    fields = user._asdict()
    extension = dict(extensions_of(self).get(user_id, {}))
    for op in operations:
        path = op.get("AttributePath", "")
        has_value = "AttributeValue" in op and op["AttributeValue"] is not None
        value = op.get("AttributeValue")
        if has_value:
            check_not_empty(path, value)
        key = path.lower()
        if key.startswith(ENTERPRISE):
            sub = path[len(ENTERPRISE):].lstrip(".")
            if not sub:
                extension = dict(value) if has_value else {}
            elif has_value:
                extension[sub] = value
            else:
                extension.pop(sub, None)
        elif key in USER_FIELDS:
            field = USER_FIELDS[key]
            if field in ("Emails", "Addresses", "PhoneNumbers"):
                fields[field] = pascal(value) if has_value else []
            else:
                fields[field] = value if has_value else None
        elif key == "name":
            fields["Name"] = Name.from_dict(pascal(value)) if has_value else None
        elif key.startswith("name.") and key[5:] in NAME_PARTS:
            parts = (fields["Name"] or Name(None, None, None, None, None, None))._asdict()
            parts[NAME_PARTS[key[5:]]] = value if has_value else None
            fields["Name"] = Name(**parts)
        else:
            raise ValidationException(message=f"Invalid attribute path {path}")
    if not fields["UserName"]:
        raise ValidationException(message="UserName is required")
    for other in store.users.values():
        if other.UserId != user_id and other.UserName.lower() == fields["UserName"].lower():
            raise ConflictException(
                message="Duplicate UserName", reason="UNIQUENESS_CONSTRAINT_VIOLATION"
            )
    store.users[user_id] = user._replace(**fields)
    if extension:
        extensions_of(self)[user_id] = extension
    else:
        extensions_of(self).pop(user_id, None)


def update_group(self, identity_store_id, group_id, operations):
    store = store_of(self, identity_store_id)
    group = store.groups.get(group_id)
    if group is None:
        raise ResourceNotFoundException(message="GROUP not found.", resource_type="GROUP")
    fields = group._asdict()
    for op in operations or []:
        path = op.get("AttributePath", "").lower()
        value = op.get("AttributeValue")
        if value is not None:
            check_not_empty(path, value)
        if path == "displayname":
            if not value:
                raise ValidationException(message="DisplayName is required")
            if any(g.GroupId != group_id and g.DisplayName == value for g in store.groups.values()):
                raise ConflictException(
                    message="Duplicate GroupDisplayName", reason="UNIQUENESS_CONSTRAINT_VIOLATION"
                )
            fields["DisplayName"] = value
        elif path == "description":
            fields["Description"] = value
        else:
            raise ValidationException(message=f"Invalid attribute path {path}")
    store.groups[group_id] = group._replace(**fields)


def response_update_user(self):
    self.identitystore_backend.update_user(
        self._get_param("IdentityStoreId"), self._get_param("UserId"), self._get_param("Operations")
    )
    return "{}"


def response_update_group(self):
    self.identitystore_backend.update_group(
        self._get_param("IdentityStoreId"), self._get_param("GroupId"), self._get_param("Operations")
    )
    return "{}"


moto_create_user = IdentityStoreResponse.create_user
moto_describe_user = IdentityStoreResponse.describe_user
moto_delete_user = IdentityStoreBackend.delete_user


def response_create_user(self):
    body = moto_create_user(self)
    extension = (self._get_param("Extensions") or {}).get(ENTERPRISE)
    if extension:
        check_not_empty(ENTERPRISE, extension)
        extensions_of(self.identitystore_backend)[json.loads(body)["UserId"]] = extension
    return body


def response_describe_user(self):
    body = json.loads(moto_describe_user(self))
    wanted = self._get_param("Extensions") or []
    extension = extensions_of(self.identitystore_backend).get(body["UserId"])
    if ENTERPRISE in wanted and extension:
        body["Extensions"] = {ENTERPRISE: extension}
    return json.dumps(body)


def delete_user(self, identity_store_id, user_id):
    moto_delete_user(self, identity_store_id, user_id)
    extensions_of(self).pop(user_id, None)


IdentityStoreBackend.update_user = update_user
IdentityStoreBackend.update_group = update_group
IdentityStoreBackend.delete_user = delete_user
IdentityStoreResponse.update_user = response_update_user
IdentityStoreResponse.update_group = response_update_group
IdentityStoreResponse.create_user = response_create_user
IdentityStoreResponse.describe_user = response_describe_user


def main():
    port = int(sys.argv[1])
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    print(f"moto listening on 127.0.0.1:{port}", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
