/**
 * Turns every failure into `{code, message}`: coded errors as they are, validation errors as 400
 * naming the field, anything else as 500 with a reference. Internals go to the log only.
 */
import fp from 'fastify-plugin';
import type { FastifyError } from 'fastify';
import { CoveError, errors } from '../errors.js';

function fromFastifyError(error: FastifyError): CoveError | undefined {
  if (error.validation) {
    const first = error.validation[0];
    const field =
      (first?.instancePath ?? '').replace(/^\//, '').replaceAll('/', '.') ||
      ((first?.params as { missingProperty?: string } | undefined)?.missingProperty ?? '');
    const where = error.validationContext ?? 'body';
    const text = field
      ? `${where} field "${field}" ${first?.message ?? 'is invalid'}`
      : `${where} ${first?.message ?? 'is invalid'}`;
    return errors.badRequest(`The request is not valid: ${text}.`, field ? { field } : undefined);
  }
  switch (error.code) {
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return errors.unsupportedMediaType();
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return errors.badRequest('The request body is not valid JSON.');
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new CoveError('COVE_ERR_REQUEST_TOO_LARGE', 413, 'The request body is too large.');
  }
  if (error.statusCode && error.statusCode >= 400 && error.statusCode < 500)
    return new CoveError('COVE_ERR_REQUEST_INVALID', error.statusCode, 'The request is not valid.');
  return undefined;
}

export default fp(
  async (app) => {
    app.setErrorHandler((error: FastifyError | CoveError, request, reply) => {
      let coded = error instanceof CoveError ? error : fromFastifyError(error);
      if (!coded) {
        coded = errors.internal(request.id, error);
        request.log.error({ err: error }, 'unhandled error');
      } else if (coded.statusCode >= 500) {
        request.log.error({ err: error, code: coded.code }, coded.message);
      } else {
        request.log.info({ code: coded.code }, 'request refused');
      }
      if (coded.headers) reply.headers(coded.headers);
      return reply.status(coded.statusCode).send(coded.toJSON());
    });
    app.setNotFoundHandler((request, reply) => {
      const error = errors.notFound(request.url.startsWith('/api/') ? 'That API route' : 'That page');
      return reply.status(404).send(error.toJSON());
    });
  },
  { name: 'error-handler' },
);
