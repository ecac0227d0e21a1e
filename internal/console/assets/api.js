// The console's client of the /v1 API. A Strata with tokens answers 401:
// the console then asks for a token, keeps it for this tab only
// (sessionStorage) and sends it as "Authorization: Bearer" from then on.

const TOKEN_KEY = 'strata.token';

// ApiError is a failed call: the HTTP status and the server's message.
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export function token() {
  try {
    return sessionStorage.getItem(TOKEN_KEY) || '';
  } catch {
    return '';
  }
}

// One prompt at a time: calls that get a 401 while the dialog is open wait
// for the same answer.
let asking = null;

function askToken(refused) {
  if (asking) return asking;
  const dialog = document.getElementById('token-dialog');
  const form = document.getElementById('token-form');
  const input = document.getElementById('token-input');
  const why = document.getElementById('token-why');
  why.textContent = refused
    ? 'The token was refused: it is not one of this Strata\'s tokens. Enter another.'
    : 'This Strata requires a bearer token (one of its --auth-token-file). A read-only token is enough for the console.';
  input.value = '';
  asking = new Promise((resolve, reject) => {
    const done = (ok) => {
      form.removeEventListener('submit', onSubmit);
      dialog.removeEventListener('close', onClose);
      document.getElementById('token-cancel').removeEventListener('click', onCancel);
      if (dialog.open) dialog.close();
      asking = null;
      if (ok) resolve();
      else reject(new ApiError(401, 'A token is required to read this Strata. Reload the page, or follow a link, to enter one.'));
    };
    const onSubmit = (e) => {
      e.preventDefault();
      const t = input.value.trim();
      if (!t) return;
      try {
        sessionStorage.setItem(TOKEN_KEY, t);
      } catch {
        // Storage refused (private mode): the token lives as long as
        // this call; the next 401 asks again.
      }
      done(true);
    };
    const onClose = () => done(false);
    const onCancel = () => done(false);
    form.addEventListener('submit', onSubmit);
    dialog.addEventListener('close', onClose);
    document.getElementById('token-cancel').addEventListener('click', onCancel);
    dialog.showModal();
    input.focus();
  });
  return asking;
}

// api GETs a path of the API and returns its JSON. It throws ApiError for
// an error answer (with the server's message), and an AbortError when
// signal aborts.
export async function api(path, {signal} = {}) {
  for (;;) {
    const sent = token();
    const headers = {Accept: 'application/json'};
    if (sent) headers.Authorization = 'Bearer ' + sent;
    let res;
    try {
      res = await fetch(path, {headers, signal, cache: 'no-store'});
    } catch (e) {
      if (e.name === 'AbortError') throw e;
      throw new ApiError(0, `Strata does not answer (${e.message}): is it running?`);
    }
    if (res.status === 401) {
      // A token given meanwhile (another call's prompt): try it first.
      if (token() !== sent) continue;
      await askToken(sent !== '');
      continue;
    }
    let body = null;
    const text = await res.text();
    try {
      body = text ? JSON.parse(text) : null;
    } catch {
      if (res.ok) throw new ApiError(res.status, `${path}: the answer is not JSON`);
    }
    if (!res.ok) {
      const msg = body && typeof body.error === 'string' ? body.error : `${res.status} ${res.statusText}`;
      throw new ApiError(res.status, msg);
    }
    return body;
  }
}

// path joins API path parts, percent-encoding each.
export function path(...parts) {
  return '/' + parts.map((p, i) => (i === 0 ? p : encodeURIComponent(p))).join('/');
}

// The aggregate types, loaded once: the search and most pages need them.
let typesPromise = null;
export function aggregateTypes() {
  if (!typesPromise) {
    typesPromise = api('/v1/aggregates').then((r) => r.aggregates.map((a) => a.name));
    typesPromise.catch(() => { typesPromise = null; });
  }
  return typesPromise;
}
