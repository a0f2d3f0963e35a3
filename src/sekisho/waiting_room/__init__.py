"""The waiting room: admission control in front of login and registration.

A visitor reaching a guarded path (``waiting_room_paths``) needs a *pass*: a signed cookie
valid for ``waiting_room_pass_seconds``. While the room has room, the first request gets a
pass at once; a request carrying a valid pass costs one HMAC check and no shared state.
When ``waiting_room_capacity`` visitors hold passes, or admissions would exceed
``waiting_room_admissions_per_minute``, newcomers get a *ticket* instead: a numbered place
in a FIFO queue, kept in the same cookie, and a 429 answer (a page that refreshes itself,
or the JSON envelope of ``service.queue``) with their position and estimated wait.

Every request from a waiting visitor runs the *pump*: expired passes free their slots,
and the head of the queue is *called* as far as free slots and the admission rate allow.
A called visitor claims a pass at their next request; one who does not come back within
the claim window is *missed* and, on returning, rejoins at the original place (so
leaving for a while never loses the place, and an absent visitor holds no slot).

```mermaid
stateDiagram-v2
    [*] --> Admitted: room has room and nobody waits
    [*] --> Waiting: room full, or someone waits, or the room holds
    Waiting --> Called: pump (head of queue, free slot, admission budget)
    Called --> Admitted: visitor's next request (claims a pass)
    Called --> Missed: claim window passes
    Missed --> Waiting: visitor returns (original place)
    Admitted --> [*]: pass expires, or the login succeeds
```

An operator can *hold* the room (queue everyone) until ``opens_at``. At the opening the
places of everyone waiting are shuffled among themselves (a fair start: arriving early
gives no edge over arriving on time), and later arrivals queue behind them in FIFO order.

State lives in process (:class:`~sekisho.waiting_room.store.MemoryRoomStore`) or, with
``SEKISHO_REDIS_URL``, in Redis, where each visit is one atomic Lua script
(:class:`~sekisho.waiting_room.redis_store.RedisRoomStore`).
"""
