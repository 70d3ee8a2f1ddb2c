/** The credential lives in this module's memory only: never in storage, a cookie or the URL. */
let credential: string | undefined
let onSignedOut: ((message: string) => void) | undefined

export function setCredential(value: string | undefined): void {
  credential = value
}

export function whenSignedOut(listener: (message: string) => void): void {
  onSignedOut = listener
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly field?: string,
  ) {
    super(message)
  }
}

async function failure(response: Response): Promise<ApiError> {
  let message = `${response.status} ${response.statusText}`
  let field: string | undefined
  try {
    const body = (await response.json()) as { message?: string; field?: string }
    if (body.message) message = body.message
    field = body.field
  } catch {
    // Not a catalogue error body: the status line says enough.
  }
  if (response.status === 401) {
    credential = undefined
    onSignedOut?.(message)
  }
  return new ApiError(response.status, message, field)
}

const headers = (json: boolean): Record<string, string> => ({
  ...(credential === undefined ? {} : { authorization: `Bearer ${credential}` }),
  ...(json ? { 'content-type': 'application/json' } : {}),
})

export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const response = await fetch(path, {
    method,
    headers: headers(body !== undefined),
    body: body === undefined ? null : JSON.stringify(body),
    cache: 'no-store',
    credentials: 'omit',
  })
  if (!response.ok) throw await failure(response)
  return (await response.json()) as T
}

/**
 * Server-sent events read through fetch, since EventSource cannot send the Authorization header (and the
 * credential must not go into a URL). Resolves when the stream ends or `signal` aborts it.
 */
export async function stream(path: string, onEvent: (event: string, data: unknown) => void, signal: AbortSignal): Promise<void> {
  const response = await fetch(path, { headers: headers(false), signal, cache: 'no-store', credentials: 'omit' })
  if (!response.ok || !response.body) throw await failure(response)
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader()
  let buffer = ''
  for (;;) {
    const { value, done } = await reader.read()
    if (done) return
    buffer += value
    let end: number
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end)
      buffer = buffer.slice(end + 2)
      let event = 'message'
      const data: string[] = []
      for (const line of block.split('\n')) {
        if (line.startsWith('event: ')) event = line.slice(7)
        else if (line.startsWith('data: ')) data.push(line.slice(6))
      }
      if (data.length > 0) onEvent(event, JSON.parse(data.join('\n')) as unknown)
    }
  }
}
