// Small promise helpers. Nothing here sleeps for a fixed time except
// `quietWindow`, which exists only to bound "this must NOT happen" checks.

/** Rejects with a labelled error when `promise` does not settle within `ms`. */
export function withTimeout(promise, ms, label = "operation") {
  let timer
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${label}`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

/** A promise with its resolve/reject exposed. */
export function deferred() {
  let resolve, reject
  const promise = new Promise((res, rej) => { resolve = res; reject = rej })
  return { promise, resolve, reject }
}

/**
 * Polls `fn` every `every` ms until it returns a truthy value, for state that
 * emits no event (e.g. a client's internal flag). Rejects after `timeout` ms.
 */
export async function waitUntil(fn, { timeout = 2000, every = 5, label = "condition" } = {}) {
  const deadline = Date.now() + timeout
  for (;;) {
    const v = fn()
    if (v) return v
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${label}`)
    await new Promise((r) => setTimeout(r, every))
  }
}

/**
 * Waits a bounded window. Only for negative assertions ("X does not arrive
 * within N ms"); every caller says why the window is long enough.
 */
export function quietWindow(ms) {
  return new Promise((r) => setTimeout(r, ms))
}
