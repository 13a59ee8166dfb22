/**
 * What Cove's SCIM service is (RFC 7643/7644): the schema URNs it speaks, its limits, and the
 * discovery documents (`ServiceProviderConfig`, `ResourceTypes`, `Schemas`) as pure builders.
 */
type Json = Record<string, unknown>;

export const schemaUrns = {
  user: 'urn:ietf:params:scim:schemas:core:2.0:User',
  enterpriseUser: 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User',
  group: 'urn:ietf:params:scim:schemas:core:2.0:Group',
  /** Entra ID adds it to every group it creates (its own, empty extension). */
  entraGroup: 'http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group',
  patchOp: 'urn:ietf:params:scim:api:messages:2.0:PatchOp',
  listResponse: 'urn:ietf:params:scim:api:messages:2.0:ListResponse',
  serviceProviderConfig: 'urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig',
  resourceType: 'urn:ietf:params:scim:schemas:core:2.0:ResourceType',
  schema: 'urn:ietf:params:scim:schemas:core:2.0:Schema',
} as const;

export const scimLimits = {
  /** Resources in one page of a list. */
  maxCount: 100,
  /** Operations in one PATCH. */
  maxOperations: 100,
  /** Member values in one request (all operations together). */
  maxMembers: 1000,
  maxExternalIdChars: 256,
  maxTokenNameChars: 64,
  /**
   * Failed token checks per client address before it must wait (the sign-in throttle's window and
   * delays). Generous: an IdP with a bad token retries a few times; a scanner gets slowed down,
   * and its refusals stop filling the audit log.
   */
  maxAuthFailuresPerIp: 100,
} as const;

export function serviceProviderConfig(publicUrl: string): Json {
  return {
    schemas: [schemaUrns.serviceProviderConfig],
    patch: { supported: true },
    bulk: { supported: false, maxOperations: 0, maxPayloadSize: 0 },
    filter: { supported: true, maxResults: scimLimits.maxCount },
    changePassword: { supported: false },
    sort: { supported: false },
    etag: { supported: false },
    authenticationSchemes: [
      {
        type: 'oauthbearertoken',
        name: 'Bearer token',
        description: 'A token an administrator creates in the Cove admin console (Provisioning), shown once.',
        primary: true,
      },
    ],
    meta: {
      resourceType: 'ServiceProviderConfig',
      location: `${publicUrl}/scim/v2/ServiceProviderConfig`,
    },
  };
}

export function resourceTypes(publicUrl: string): Json[] {
  return [
    {
      schemas: [schemaUrns.resourceType],
      id: 'User',
      name: 'User',
      endpoint: '/Users',
      schema: schemaUrns.user,
      schemaExtensions: [{ schema: schemaUrns.enterpriseUser, required: false }],
      meta: { resourceType: 'ResourceType', location: `${publicUrl}/scim/v2/ResourceTypes/User` },
    },
    {
      schemas: [schemaUrns.resourceType],
      id: 'Group',
      name: 'Group',
      endpoint: '/Groups',
      schema: schemaUrns.group,
      meta: { resourceType: 'ResourceType', location: `${publicUrl}/scim/v2/ResourceTypes/Group` },
    },
  ];
}

export function schemaDefinitions(publicUrl: string): Json[] {
  const attr = (name: string, type: string, extra: Json = {}): Json => ({
    name,
    type,
    multiValued: false,
    required: false,
    caseExact: false,
    mutability: 'readWrite',
    returned: 'default',
    uniqueness: 'none',
    ...extra,
  });
  return [
    {
      schemas: [schemaUrns.schema],
      id: schemaUrns.user,
      name: 'User',
      description: 'A Cove user; signs in through the identity provider of the SCIM token that made it.',
      attributes: [
        attr('userName', 'string', {
          required: true,
          uniqueness: 'server',
          mutability: 'immutable',
          description: 'The Cove user name (letters, digits and . _ @ + -; stored in lower case).',
        }),
        attr('active', 'boolean', {
          description: 'false disables the user and ends their sessions and shells.',
        }),
        attr('externalId', 'string', { caseExact: true }),
        attr('emails', 'complex', {
          multiValued: true,
          description: 'Cove keeps the primary address only.',
          subAttributes: [attr('value', 'string'), attr('type', 'string'), attr('primary', 'boolean')],
        }),
      ],
      meta: { resourceType: 'Schema', location: `${publicUrl}/scim/v2/Schemas/${schemaUrns.user}` },
    },
    {
      schemas: [schemaUrns.schema],
      id: schemaUrns.group,
      name: 'Group',
      description: 'A Cove group; assignments of AWS access to it apply to its members.',
      attributes: [
        attr('displayName', 'string', { required: true, uniqueness: 'server' }),
        attr('externalId', 'string', { caseExact: true }),
        attr('members', 'complex', {
          multiValued: true,
          subAttributes: [
            attr('value', 'string', { mutability: 'immutable' }),
            attr('display', 'string', { mutability: 'readOnly' }),
          ],
        }),
      ],
      meta: { resourceType: 'Schema', location: `${publicUrl}/scim/v2/Schemas/${schemaUrns.group}` },
    },
  ];
}
