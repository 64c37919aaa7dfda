// The page's one way to call the service: JSON in and out, no cookies, no cache, no referrer.
// A failure is an ApiProblem carrying the server's machine-readable code (or `network`).

export class ApiProblem extends Error {
  constructor(code, status = 0) {
    super(code);
    this.code = code;
    this.status = status; // 0: no answer at all
  }
}

export function randomKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

export async function api(method, path, { body, token, headers = {} } = {}) {
  const init = {
    method,
    headers: { Accept: 'application/json', ...headers },
    credentials: 'omit',
    cache: 'no-store',
    referrerPolicy: 'no-referrer',
  };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  if (token) init.headers.Authorization = `Bearer ${token}`;
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new ApiProblem('network');
  }
  let payload = null;
  try {
    payload = await response.json();
  } catch {
    payload = null;
  }
  if (!response.ok) {
    const code = (payload && payload.error && payload.error.code) || `http_${response.status}`;
    throw new ApiProblem(code, response.status);
  }
  return payload;
}
