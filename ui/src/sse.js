// Server-sent events over fetch rather than EventSource: an answer that
// is not a stream (400 OUT_OF_RANGE before any event) is read with its
// JSON body, which EventSource hides.

// Calls onEvent({event, id, data}) for each event of `response`'s body;
// resolves when the stream ends, rejects when it breaks.
export async function readEvents(response, onEvent) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  let event = { event: 'message', id: null, data: [] };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let newline;
    while ((newline = buffer.indexOf('\n')) >= 0) {
      let line = buffer.slice(0, newline);
      buffer = buffer.slice(newline + 1);
      if (line.endsWith('\r')) line = line.slice(0, -1);
      if (line === '') {
        if (event.data.length > 0) {
          onEvent({ event: event.event, id: event.id, data: event.data.join('\n') });
        }
        event = { event: 'message', id: null, data: [] };
        continue;
      }
      if (line.startsWith(':')) continue; // a comment: the keep-alive
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let val = colon < 0 ? '' : line.slice(colon + 1);
      if (val.startsWith(' ')) val = val.slice(1);
      if (field === 'event') event.event = val;
      else if (field === 'id') event.id = val;
      else if (field === 'data') event.data.push(val);
    }
  }
}
