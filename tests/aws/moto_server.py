"""moto in server mode, extended with the Identity Store and sso-admin operations moto 5.2.5 lacks.

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

And on sso-admin (moto's `SSOAdminResponse` and `SSOAdminBackend`), what permission sets,
account assignments and application assignments need:
- Application assignments: Create/DeleteApplicationAssignment, ListApplicationAssignments
  (paginated) and ListApplicationAssignmentsForPrincipal, Put/GetApplicationAssignmentConfiguration
  (AssignmentRequired, true until set). moto has no SAML applications: any ApplicationArn is
  accepted.
- Provisioning as AWS does it: a map permission set -> accounts it is provisioned to, filled by
  CreateAccountAssignment (into its TargetId) and ProvisionPermissionSet (AWS_ACCOUNT adds the
  TargetId; ALL_PROVISIONED_ACCOUNTS re-provisions those already there), read by
  ListAccountsForProvisionedPermissionSet and ListPermissionSetsProvisionedToAccount (moto's
  own only know the caller's account), with DescribePermissionSetProvisioningStatus;
  DeletePermissionSet drops its entry. The lists added here page with an offset as NextToken.
- One account assignment per (instance, target, permission set, principal), as AWS keeps: creating
  an existing one answers SUCCEEDED with a new RequestId and adds no duplicate. Every creation and
  deletion status is kept by RequestId (moto found a creation only while its assignment existed,
  and gave a deletion the RequestId of the creation).
Every operation answers SUCCEEDED at once; IN_PROGRESS is the fault proxy's job
(tests/support/fault_proxy.rs).
Extension state lives on the backend instances, so `POST /moto-api/reset` clears it too.

For directories of benchmark size (bench/scale.py, 100,000 users and 1,000,000 memberships):
- ListUsers, ListGroups (unfiltered) and ListGroupMemberships page in time proportional to the
  page: moto builds the whole list on every page call, and scans every membership of every group
  for each ListGroupMemberships, which makes one full read of such a directory take hours. The
  NextToken is the id of the next item (moto's is too, encoded); the order is moto's.
- `POST /_scimbridge/seed` creates users, groups and memberships in the Identity Store's
  backend in-process, in one request, and answers their ids (see `seed`): a synced state for a
  benchmark without the million API calls of a real initial sync. Never used by the tests.
"""

import sys
import threading
from uuid import uuid4

from moto.core import DEFAULT_ACCOUNT_ID
from moto.identitystore.models import Group, User, identitystore_backends
from moto.ssoadmin.models import ssoadmin_backends
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from moto.utilities.paginator import InvalidToken
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from moto.core.exceptions import JsonRESTError
from moto.core.utils import unix_time
from moto.identitystore.exceptions import (
    ConflictException,
    ResourceNotFoundException,
    ValidationException,
)
from moto.identitystore.models import IdentityStoreBackend, Name
from moto.identitystore.responses import IdentityStoreResponse
from moto.ssoadmin.exceptions import ResourceNotFoundException as SsoResourceNotFoundException
from moto.ssoadmin.models import SSOAdminBackend
from moto.ssoadmin.responses import SSOAdminResponse
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



# --- sso-admin ---------------------------------------------------------------------------------

# The server is threaded and moto's backends take no locks: the read-then-write operations below
# (one assignment per tuple, the provisioning map) would otherwise race under concurrent callers.
SSO_LOCK = threading.RLock()


class SsoValidationException(JsonRESTError):
    code = 400

    def __init__(self, message):
        super().__init__(error_type="ValidationException", message=message)


class SsoState:
    """What this file adds to an sso-admin backend."""

    def __init__(self):
        # application ARN -> {(principal type, principal id): None}, in creation order.
        self.application_assignments = {}
        # application ARN -> AssignmentRequired (absent: true, as for a new application).
        self.assignment_required = {}
        # permission set ARN -> account ids it is provisioned to.
        self.provisioned = {}
        # permission set ARN -> how many times ProvisionPermissionSet was called for it.
        self.provision_count = {}
        # RequestId -> PermissionSetProvisioningStatus / AccountAssignmentCreationStatus /
        # AccountAssignmentDeletionStatus.
        self.provisioning = {}
        self.creations = {}
        self.deletions = {}


def sso_state(backend):
    if not hasattr(backend, "scimbridge_sso"):
        backend.scimbridge_sso = SsoState()
    return backend.scimbridge_sso


def page(items, max_results, next_token):
    """Offset pagination: NextToken is the index of the next item, as a string."""
    try:
        start = int(next_token) if next_token else 0
    except ValueError:
        raise SsoValidationException("Invalid NextToken") from None
    limit = int(max_results) if max_results else 100
    if start < 0 or limit < 1:
        raise SsoValidationException("Invalid NextToken or MaxResults")
    end = start + limit
    return items[start:end], (str(end) if end < len(items) else None)


def with_token(body, next_token):
    if next_token is not None:
        body["NextToken"] = next_token
    return json.dumps(body)


def create_application_assignment(self, application_arn, principal_id, principal_type):
    with SSO_LOCK:
        assigned = sso_state(self).application_assignments.setdefault(application_arn, {})
        assigned[(principal_type, principal_id)] = None


def delete_application_assignment(self, application_arn, principal_id, principal_type):
    with SSO_LOCK:
        assigned = sso_state(self).application_assignments.get(application_arn, {})
        if (principal_type, principal_id) not in assigned:
            raise SsoResourceNotFoundException(message="Application assignment not found")
        del assigned[(principal_type, principal_id)]


def application_assignment(application_arn, principal):
    principal_type, principal_id = principal
    return {
        "ApplicationArn": application_arn,
        "PrincipalId": principal_id,
        "PrincipalType": principal_type,
    }


def list_application_assignments(self, application_arn):
    with SSO_LOCK:
        assigned = list(sso_state(self).application_assignments.get(application_arn, {}))
    return [application_assignment(application_arn, p) for p in assigned]


def list_application_assignments_for_principal(self, principal_id, principal_type, filter_):
    wanted = (filter_ or {}).get("ApplicationArn")
    with SSO_LOCK:
        return [
            application_assignment(arn, (principal_type, principal_id))
            for arn, assigned in sso_state(self).application_assignments.items()
            if (wanted is None or arn == wanted) and (principal_type, principal_id) in assigned
        ]


def provision_permission_set(self, instance_arn, permission_set_arn, target_type=None, target_id=None):
    """Provision into one account (AWS_ACCOUNT) or again into all it is already in."""
    self._find_permission_set(instance_arn, permission_set_arn)
    if target_type == "AWS_ACCOUNT":
        if not target_id:
            raise SsoValidationException("TargetId is required for TargetType AWS_ACCOUNT")
    elif target_type != "ALL_PROVISIONED_ACCOUNTS":
        raise SsoValidationException(f"Invalid TargetType {target_type}")
    state = sso_state(self)
    with SSO_LOCK:
        accounts = state.provisioned.setdefault(permission_set_arn, set())
        if target_type == "AWS_ACCOUNT":
            accounts.add(target_id)
        state.provision_count[permission_set_arn] = (
            state.provision_count.get(permission_set_arn, 0) + 1
        )
        status = {
            "RequestId": str(uuid4()),
            "Status": "SUCCEEDED",
            "PermissionSetArn": permission_set_arn,
            "CreatedDate": unix_time(),
        }
        if target_id:
            status["AccountId"] = target_id
        state.provisioning[status["RequestId"]] = status
        return dict(status)


def describe_permission_set_provisioning_status(self, request_id):
    status = sso_state(self).provisioning.get(request_id)
    if status is None:
        raise SsoResourceNotFoundException(
            message=f"Could not find provisioning request with id {request_id}"
        )
    return dict(status)


def list_accounts_for_provisioned_permission_set(self, instance_arn, permission_set_arn):
    self._find_permission_set(instance_arn, permission_set_arn)
    with SSO_LOCK:
        return sorted(sso_state(self).provisioned.get(permission_set_arn, ()))


def list_permission_sets_provisioned_to_account(self, instance_arn, account_id):
    provisioned = sso_state(self).provisioned
    with SSO_LOCK:
        return [
            ps.permission_set_arn
            for ps in self.permission_sets
            if ps.instance_arn == instance_arn
            and account_id in provisioned.get(ps.permission_set_arn, ())
        ]


moto_create_account_assignment = SSOAdminBackend.create_account_assignment
moto_delete_account_assignment = SSOAdminBackend.delete_account_assignment
moto_delete_permission_set = SSOAdminBackend.delete_permission_set


def create_account_assignment(
    self, instance_arn, target_id, target_type, permission_set_arn, principal_type, principal_id
):
    """One assignment per tuple, as AWS keeps; the permission set is provisioned to the target."""
    key = (instance_arn, target_id, target_type, permission_set_arn, principal_type, principal_id)
    state = sso_state(self)
    with SSO_LOCK:
        try:
            existing = self._find_account(*key)
        except SsoResourceNotFoundException:
            existing = None
        if existing is None:
            status = moto_create_account_assignment(self, *key)
        else:
            status = existing.to_json(include_creation_date=True, include_request_id=True)
            status["RequestId"] = str(uuid4())
            status["CreatedDate"] = unix_time()
        status["Status"] = "SUCCEEDED"
        state.provisioned.setdefault(permission_set_arn, set()).add(target_id)
        state.creations[status["RequestId"]] = dict(status)
        return status


def delete_account_assignment(
    self, instance_arn, target_id, target_type, permission_set_arn, principal_type, principal_id
):
    """moto's, with a RequestId of its own (moto reused the creation's)."""
    key = (instance_arn, target_id, target_type, permission_set_arn, principal_type, principal_id)
    with SSO_LOCK:
        status = moto_delete_account_assignment(self, *key)
        status["RequestId"] = str(uuid4())
        status["CreatedDate"] = unix_time()
        status["Status"] = "SUCCEEDED"
        sso_state(self).deletions[status["RequestId"]] = dict(status)
        return status


def describe_account_assignment_creation_status(
    self, account_assignment_creation_request_id, instance_arn
):
    status = sso_state(self).creations.get(account_assignment_creation_request_id)
    if status is None:
        raise SsoResourceNotFoundException(message="Could not find the creation request")
    return dict(status)


def describe_account_assignment_deletion_status(
    self, account_assignment_deletion_request_id, instance_arn
):
    status = sso_state(self).deletions.get(account_assignment_deletion_request_id)
    if status is None:
        raise SsoResourceNotFoundException(message="Could not find the deletion request")
    return dict(status)


def delete_permission_set(self, instance_arn, permission_set_arn):
    with SSO_LOCK:
        result = moto_delete_permission_set(self, instance_arn, permission_set_arn)
        state = sso_state(self)
        state.provisioned.pop(permission_set_arn, None)
        return result


def response_create_application_assignment(self):
    self.ssoadmin_backend.create_application_assignment(
        self._get_param("ApplicationArn"),
        self._get_param("PrincipalId"),
        self._get_param("PrincipalType"),
    )
    return "{}"


def response_delete_application_assignment(self):
    self.ssoadmin_backend.delete_application_assignment(
        self._get_param("ApplicationArn"),
        self._get_param("PrincipalId"),
        self._get_param("PrincipalType"),
    )
    return "{}"


def response_list_application_assignments(self):
    assignments = self.ssoadmin_backend.list_application_assignments(
        self._get_param("ApplicationArn")
    )
    assignments, next_token = page(
        assignments, self._get_param("MaxResults"), self._get_param("NextToken")
    )
    return with_token({"ApplicationAssignments": assignments}, next_token)


def response_list_application_assignments_for_principal(self):
    assignments = self.ssoadmin_backend.list_application_assignments_for_principal(
        self._get_param("PrincipalId"),
        self._get_param("PrincipalType"),
        self._get_param("Filter"),
    )
    assignments, next_token = page(
        assignments, self._get_param("MaxResults"), self._get_param("NextToken")
    )
    return with_token({"ApplicationAssignments": assignments}, next_token)


def response_put_application_assignment_configuration(self):
    required = self._get_param("AssignmentRequired")
    if not isinstance(required, bool):
        raise SsoValidationException("AssignmentRequired must be a boolean")
    with SSO_LOCK:
        sso_state(self.ssoadmin_backend).assignment_required[
            self._get_param("ApplicationArn")
        ] = required
    return "{}"


def response_get_application_assignment_configuration(self):
    required = sso_state(self.ssoadmin_backend).assignment_required.get(
        self._get_param("ApplicationArn"), True
    )
    return json.dumps({"AssignmentRequired": required})


def response_provision_permission_set(self):
    status = self.ssoadmin_backend.provision_permission_set(
        instance_arn=self._get_param("InstanceArn"),
        permission_set_arn=self._get_param("PermissionSetArn"),
        target_type=self._get_param("TargetType"),
        target_id=self._get_param("TargetId"),
    )
    return json.dumps({"PermissionSetProvisioningStatus": status})


def response_describe_permission_set_provisioning_status(self):
    status = self.ssoadmin_backend.describe_permission_set_provisioning_status(
        self._get_param("ProvisionPermissionSetRequestId")
    )
    return json.dumps({"PermissionSetProvisioningStatus": status})


def response_list_accounts_for_provisioned_permission_set(self):
    accounts = self.ssoadmin_backend.list_accounts_for_provisioned_permission_set(
        self._get_param("InstanceArn"), self._get_param("PermissionSetArn")
    )
    accounts, next_token = page(
        accounts, self._get_param("MaxResults"), self._get_param("NextToken")
    )
    return with_token({"AccountIds": accounts}, next_token)


def response_list_permission_sets_provisioned_to_account(self):
    arns = self.ssoadmin_backend.list_permission_sets_provisioned_to_account(
        self._get_param("InstanceArn"), self._get_param("AccountId")
    )
    arns, next_token = page(arns, self._get_param("MaxResults"), self._get_param("NextToken"))
    return with_token({"PermissionSets": arns}, next_token)


def response_create_permission_set(self):
    # moto defaults SessionDuration to the integer 3600, which the SDKs cannot read: AWS's
    # default is the ISO-8601 string PT1H.
    permission_set = self.ssoadmin_backend.create_permission_set(
        name=self._get_param("Name"),
        description=self._get_param("Description"),
        instance_arn=self._get_param("InstanceArn"),
        session_duration=self._get_param("SessionDuration") or "PT1H",
        relay_state=self._get_param("RelayState"),
        tags=self._get_param("Tags"),
    )
    return json.dumps({"PermissionSet": permission_set})


def response_update_permission_set(self):
    # AWS changes only what the request names; moto resets the rest.
    backend = self.ssoadmin_backend
    with SSO_LOCK:
        permission_set = backend._find_permission_set(
            self._get_param("InstanceArn"), self._get_param("PermissionSetArn")
        )
        for param, field in (
            ("Description", "description"),
            ("SessionDuration", "session_duration"),
            ("RelayState", "relay_state"),
        ):
            value = self._get_param(param)
            if value is not None:
                setattr(permission_set, field, value)
    return "{}"


SSOAdminBackend.create_application_assignment = create_application_assignment
SSOAdminBackend.delete_application_assignment = delete_application_assignment
SSOAdminBackend.list_application_assignments = list_application_assignments
SSOAdminBackend.list_application_assignments_for_principal = (
    list_application_assignments_for_principal
)
SSOAdminBackend.provision_permission_set = provision_permission_set
SSOAdminBackend.describe_permission_set_provisioning_status = (
    describe_permission_set_provisioning_status
)
SSOAdminBackend.list_accounts_for_provisioned_permission_set = (
    list_accounts_for_provisioned_permission_set
)
SSOAdminBackend.list_permission_sets_provisioned_to_account = (
    list_permission_sets_provisioned_to_account
)
SSOAdminBackend.create_account_assignment = create_account_assignment
SSOAdminBackend.delete_account_assignment = delete_account_assignment
SSOAdminBackend.describe_account_assignment_creation_status = (
    describe_account_assignment_creation_status
)
SSOAdminBackend.describe_account_assignment_deletion_status = (
    describe_account_assignment_deletion_status
)
SSOAdminBackend.delete_permission_set = delete_permission_set
SSOAdminResponse.create_application_assignment = response_create_application_assignment
SSOAdminResponse.create_permission_set = response_create_permission_set
SSOAdminResponse.update_permission_set = response_update_permission_set
SSOAdminResponse.delete_application_assignment = response_delete_application_assignment
SSOAdminResponse.list_application_assignments = response_list_application_assignments
SSOAdminResponse.list_application_assignments_for_principal = (
    response_list_application_assignments_for_principal
)
SSOAdminResponse.put_application_assignment_configuration = (
    response_put_application_assignment_configuration
)
SSOAdminResponse.get_application_assignment_configuration = (
    response_get_application_assignment_configuration
)
SSOAdminResponse.provision_permission_set = response_provision_permission_set
SSOAdminResponse.describe_permission_set_provisioning_status = (
    response_describe_permission_set_provisioning_status
)
SSOAdminResponse.list_accounts_for_provisioned_permission_set = (
    response_list_accounts_for_provisioned_permission_set
)
SSOAdminResponse.list_permission_sets_provisioned_to_account = (
    response_list_permission_sets_provisioned_to_account
)


# --- pages in time proportional to the page ----------------------------------------------------

# Guards the per-group membership index against concurrent creates and deletes (the server is
# threaded; moto's own dict operations are atomic under the GIL, a read-modify of two is not).
INDEX_LOCK = threading.Lock()


def members_by_group(store):
    """group id -> {membership id: membership}, in moto's order; built once per store and kept
    by the create and delete below (the only operations that change memberships)."""
    index = getattr(store, "scimbridge_members_by_group", None)
    if index is None:
        index = {}
        for m in store.group_memberships.values():
            index.setdefault(m["GroupId"], {})[m["MembershipId"]] = m
        store.scimbridge_members_by_group = index
    return index


def page_of(items, max_results, next_token):
    """One page of a dict (id -> item), from the item whose id is `next_token`; the next id."""
    ids = list(items)
    start = 0
    if next_token:
        try:
            start = ids.index(next_token)
        except ValueError:
            raise InvalidToken("Resource not found!") from None
    end = start + (int(max_results) if max_results else 100)
    return [items[i] for i in ids[start:end]], (ids[end] if end < len(ids) else None)


moto_create_group_membership = IdentityStoreBackend.create_group_membership
moto_delete_group_membership = IdentityStoreBackend.delete_group_membership
moto_list_users = IdentityStoreBackend.list_users
moto_list_groups = IdentityStoreBackend.list_groups


def create_group_membership(self, identity_store_id, group_id, member_id):
    membership_id, store_id = moto_create_group_membership(self, identity_store_id, group_id, member_id)
    store = store_of(self, identity_store_id)
    with INDEX_LOCK:
        members = members_by_group(store).setdefault(group_id, {})
        members[membership_id] = store.group_memberships[membership_id]
    return membership_id, store_id


def delete_group_membership(self, identity_store_id, membership_id):
    store = store_of(self, identity_store_id)
    with INDEX_LOCK:
        membership = store.group_memberships.get(membership_id)
        moto_delete_group_membership(self, identity_store_id, membership_id)
        if membership is not None:
            members_by_group(store).get(membership["GroupId"], {}).pop(membership_id, None)


def list_group_memberships(self, identity_store_id, group_id, max_results=None, next_token=None):
    store = store_of(self, identity_store_id)
    with INDEX_LOCK:
        members = dict(members_by_group(store).get(group_id, {}))
    return page_of(members, max_results, next_token)


def user_json(user):
    out = user._asdict()
    if out.get("Name"):
        out["Name"] = user.Name._asdict()
    return out


def list_users(self, identity_store_id, max_results=None, next_token=None, filters=None):
    if filters:
        return moto_list_users(
            self, identity_store_id=identity_store_id, max_results=max_results,
            next_token=next_token, filters=filters,
        )
    users, next_token = page_of(store_of(self, identity_store_id).users, max_results, next_token)
    return [user_json(u) for u in users], next_token


def list_groups(self, identity_store_id, max_results=None, next_token=None, filters=None):
    if filters:
        return moto_list_groups(
            self, identity_store_id=identity_store_id, max_results=max_results,
            next_token=next_token, filters=filters,
        )
    return page_of(store_of(self, identity_store_id).groups, max_results, next_token)


IdentityStoreBackend.create_group_membership = create_group_membership
IdentityStoreBackend.delete_group_membership = delete_group_membership
IdentityStoreBackend.list_group_memberships = list_group_memberships
IdentityStoreBackend.list_users = list_users
IdentityStoreBackend.list_groups = list_groups


# --- bulk seeding (benchmarks) ------------------------------------------------------------------

SEED_PATH = "/_scimbridge/seed"


class SeedError(Exception):
    """A seed request the Identity Store would refuse: answered 400 with the message."""


def seed_user(attrs, store_id):
    """A moto User from the bridge's shape of a user (mapping/aws_profile.rs: camelCase keys,
    `name`, one-element `emails` …, `extensions`), as CreateUser would store it."""
    fields = {}
    for key, value in attrs.items():
        if key in ("name", "extensions"):
            continue
        field = USER_FIELDS.get(key.lower())
        if field is None:
            raise SeedError(f"unknown user attribute {key!r}")
        check_not_empty(key, value)
        fields[field] = pascal(value) if field in ("Emails", "Addresses", "PhoneNumbers") else value
    name = Name.from_dict(pascal(attrs.get("name") or {}))
    user_name = fields.get("UserName")
    if not user_name or not fields.get("DisplayName") or not name or not name.GivenName or not name.FamilyName:
        raise SeedError(f"user {user_name!r}: userName, displayName, name.givenName and name.familyName are required")
    return User(
        UserId=str(uuid4()), IdentityStoreId=store_id, UserName=user_name, Name=name,
        DisplayName=fields.get("DisplayName"), NickName=fields.get("NickName"),
        ProfileUrl=fields.get("ProfileUrl"), Emails=fields.get("Emails", []),
        Addresses=fields.get("Addresses", []), PhoneNumbers=fields.get("PhoneNumbers", []),
        UserType=fields.get("UserType"), Title=fields.get("Title"),
        PreferredLanguage=fields.get("PreferredLanguage"), Locale=fields.get("Locale"),
        Timezone=fields.get("Timezone"),
    )


def seed(body):
    """Creates in one go what CreateUser, CreateGroup and CreateGroupMembership would:

        {"Users": [<the bridge's shape of a user>, …], "Groups": [{"displayName": …}, …],
         "Memberships": [[group, user], …],
         "IdentityStoreId": optional (default: the region's sso-admin instance's, as
         ListInstances reports it), "Region": optional (default us-east-1)}

    A group or user in Memberships is an index into this request's Groups / Users, or the id of
    one that exists. Names are unique (case-insensitively, as AWS compares them), against what
    exists and within the request; nothing is created unless everything is valid. Answers
    {"IdentityStoreId", "UserIds", "GroupIds", "MembershipIds"}, each in request order."""
    region = body.get("Region") or "us-east-1"
    store_id = body.get("IdentityStoreId") or (
        ssoadmin_backends[DEFAULT_ACCOUNT_ID][region].instances[0].identity_store_id
    )
    backend = identitystore_backends[DEFAULT_ACCOUNT_ID][region]
    store = store_of(backend, store_id)
    users = [seed_user(a, store_id) for a in body.get("Users") or []]
    taken = {u.UserName.lower() for u in store.users.values()}
    for u in users:
        if u.UserName.lower() in taken:
            raise SeedError(f"Duplicate UserName {u.UserName!r}")
        taken.add(u.UserName.lower())
    groups = []
    taken = {g.DisplayName.lower() for g in store.groups.values()}
    for attrs in body.get("Groups") or []:
        name = attrs.get("displayName")
        if not name or set(attrs) - {"displayName", "description"}:
            raise SeedError(f"a group takes displayName (required) and description: {attrs}")
        if name.lower() in taken:
            raise SeedError(f"Duplicate GroupDisplayName {name!r}")
        taken.add(name.lower())
        groups.append(Group(str(uuid4()), name, [], attrs.get("description"), store_id))

    def resolve(ref, made, existing, what):
        if isinstance(ref, int) and 0 <= ref < len(made):
            return made[ref]
        if isinstance(ref, str) and ref in existing:
            return ref
        raise SeedError(f"membership names no {what}: {ref!r}")

    user_ids = [u.UserId for u in users]
    group_ids = [g.GroupId for g in groups]
    pairs = [
        (resolve(g, group_ids, store.groups, "group"), resolve(u, user_ids, store.users, "user"))
        for g, u in body.get("Memberships") or []
    ]
    extensions = extensions_of(backend)
    for attrs, user in zip(body.get("Users") or [], users):
        store.users[user.UserId] = user
        extension = (attrs.get("extensions") or {}).get(ENTERPRISE)
        if extension:
            extensions[user.UserId] = extension
    for group in groups:
        store.groups[group.GroupId] = group
    membership_ids = []
    with INDEX_LOCK:
        index = members_by_group(store)
        for group_id, user_id in pairs:
            membership_id = str(uuid4())
            membership = {
                "IdentityStoreId": store_id,
                "MembershipId": membership_id,
                "GroupId": group_id,
                "MemberId": {"UserId": user_id},
            }
            store.group_memberships[membership_id] = membership
            index.setdefault(group_id, {})[membership_id] = membership
            membership_ids.append(membership_id)
    return {"IdentityStoreId": store_id, "UserIds": user_ids, "GroupIds": group_ids,
            "MembershipIds": membership_ids}


class Application:
    """moto's application, with `POST /_scimbridge/seed` in front of it."""

    def __init__(self):
        self.moto = DomainDispatcherApplication(create_backend_app)

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO") != SEED_PATH:
            return self.moto(environ, start_response)
        request = Request(environ)
        if request.method != "POST":
            return Response("POST only", status=405)(environ, start_response)
        try:
            answer, status = seed(json.loads(request.get_data())), 200
        except (SeedError, ValidationException, ValueError, TypeError, AttributeError) as e:
            answer, status = {"message": str(e) or type(e).__name__}, 400
        return Response(json.dumps(answer), status=status, content_type="application/json")(
            environ, start_response
        )


def main():
    port = int(sys.argv[1])
    server = make_server("127.0.0.1", port, Application(), threaded=True,
                         request_handler=MotoRequestHandler)
    print(f"moto listening on 127.0.0.1:{port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
