/**
 * Admin API errors: one class, a stable code per failure (docs/errors.md), answered as
 * `{error: {code, message}}` with a fitting status (DESIGN.md §4).
 */
export class AdminError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export const badRequest = (message: string) => new AdminError(400, 'MG_ERR_ADMIN_BAD_REQUEST', message);
export const notFound = (message: string) => new AdminError(404, 'MG_ERR_ADMIN_NOT_FOUND', message);
