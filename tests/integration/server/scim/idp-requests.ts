/**
 * Request bodies as Okta's and Microsoft Entra ID's provisioning documentation publish them, for
 * replay against Cove (ids the test cannot know, such as the new user's, are filled in by the
 * functions). Names and emails are the documentation's own example values.
 *
 * Okta: "Okta and SCIM Version 2.0", developer.okta.com/docs/api/openapi/okta-scim/guides/scim-20
 * Entra: "Tutorial: Develop and plan provisioning for a SCIM endpoint in Microsoft Entra ID",
 *   learn.microsoft.com/entra/identity/app-provisioning/use-scim-to-provision-users-and-groups
 *   (section "User operations" / "Group operations" request examples), and "Known issues and
 *   resolutions with SCIM 2.0 protocol compliance" for the capitalised "Replace"/"Add" ops and
 *   the "False" string.
 */
export const okta = {
  lookupUser: '/scim/v2/Users?filter=userName%20eq%20%22test.user%40okta.local%22&startIndex=1&count=100',
  createUser: {
    schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
    userName: 'test.user@okta.local',
    name: { givenName: 'Test', familyName: 'User' },
    emails: [{ primary: true, value: 'test.user@okta.local', type: 'work' }],
    displayName: 'Test User',
    locale: 'en-US',
    externalId: '00ujl29u0le5T6Aj10h7',
    groups: [],
    password: '1mz050nq',
    active: true,
  },
  replaceUser: (id: string) => ({
    schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
    id,
    userName: 'test.user@okta.local',
    name: { givenName: 'Another', familyName: 'User' },
    emails: [{ primary: true, value: 'test.user@okta.local', type: 'work' }],
    displayName: 'Another User',
    locale: 'en-US',
    groups: [],
    password: '1mz050nq',
    active: true,
    meta: {
      resourceType: 'User',
      created: '2021-03-01T00:00:00.000Z',
      lastModified: '2021-03-01T00:00:00.000Z',
    },
  }),
  deactivateUser: {
    schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
    Operations: [{ op: 'replace', value: { active: false } }],
  },
  lookupGroup: '/scim/v2/Groups?filter=displayName%20eq%20%22Test%20SCIMv2%22&startIndex=1&count=100',
  createGroup: {
    schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'],
    displayName: 'Test SCIMv2',
    members: [],
  },
  renameGroup: (id: string) => ({
    schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
    Operations: [{ op: 'replace', value: { id, displayName: 'Test SCIMv2 renamed' } }],
  }),
  addMembers: (userId: string) => ({
    schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
    Operations: [{ op: 'add', path: 'members', value: [{ value: userId, display: 'test.user@okta.local' }] }],
  }),
  removeMember: (userId: string) => ({
    schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
    Operations: [{ op: 'remove', path: `members[value eq "${userId}"]` }],
  }),
};

export const entra = {
  lookupUser: '/scim/v2/Users?filter=userName+eq+%22Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1%22',
  createUser: {
    schemas: [
      'urn:ietf:params:scim:schemas:core:2.0:User',
      'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User',
    ],
    externalId: '0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef',
    userName: 'Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1',
    active: true,
    emails: [
      { primary: true, type: 'work', value: 'Test_User_fd0ea19b-0777-472c-9f96-4f70d2226f2e@testuser.com' },
    ],
    meta: { resourceType: 'User' },
    name: { formatted: 'givenName familyName', familyName: 'familyName', givenName: 'givenName' },
    roles: [],
  },
  updateUser: {
    schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
    Operations: [
      { op: 'Replace', path: 'emails[type eq "work"].value', value: 'updatedEmail@microsoft.com' },
      { op: 'Replace', path: 'name.familyName', value: 'updatedFamilyName' },
    ],
  },
  disableUser: {
    Operations: [{ op: 'Replace', path: 'active', value: false }],
    schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
  },
  /** What Entra's older provisioning jobs send (the "False" string). */
  disableUserAsString: {
    schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
    Operations: [{ op: 'Replace', path: 'active', value: 'False' }],
  },
  lookupGroup: '/scim/v2/Groups?excludedAttributes=members&filter=displayName+eq+%22displayName%22',
  createGroup: {
    schemas: [
      'urn:ietf:params:scim:schemas:core:2.0:Group',
      'http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group',
    ],
    externalId: '8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159',
    displayName: 'displayName',
    meta: { resourceType: 'Group' },
  },
  addMember: (userId: string) => ({
    schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
    Operations: [{ name: 'addMember', op: 'Add', path: 'members', value: [{ $ref: null, value: userId }] }],
  }),
  removeMember: (userId: string) => ({
    schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
    Operations: [
      { name: 'removeMember', op: 'Remove', path: 'members', value: [{ $ref: null, value: userId }] },
    ],
  }),
};
