/*
 * Rotor's refresh protocol, revocations and session-state cache, for Spin.
 * docs/protocol.md explains it; model/check.mjs runs it (`npm run model`).
 *
 * One session, its chain of refresh tokens T0, T1, ... (Tk+1 = HMAC(Tk): the successor of a token is
 * always the next index), two Rotor instances on one database, honest tabs, an attacker, a revoker,
 * crashes, a clock, and each instance's session cache with its LISTEN connection.
 *
 * A step is one SQL statement (PostgreSQL runs each atomically; READ COMMITTED: it sees what was
 * committed when it ran) or one event of the environment. Labels and comments name the Store method
 * or the function of packages/server/src each step stands for.
 */

/* ---- The fixes of issue 15: 1 = the code after the fix, 0 = the code before it. ---- */
#ifndef FIX_CHAIN_TIP
#define FIX_CHAIN_TIP 1          /* 1. a racer in the window gets the live tip of its chain */
#endif
#ifndef FIX_ONE_CLOCK
#define FIX_ONE_CLOCK 1          /* 2. the refresh decision's time is store.databaseNow() */
#endif
#ifndef FIX_HEARTBEAT
#define FIX_HEARTBEAT 1          /* 3. the LISTEN connection's heartbeat (postgres-changes.ts) */
#endif
#ifndef FIX_LOCK_SESSION
#define FIX_LOCK_SESSION 1       /* 4. findTokenWithSession: SELECT ... FOR UPDATE OF sessions */
#endif
#ifndef FIX_AUDIT_IN_TX
#define FIX_AUDIT_IN_TX 1        /* 5. insertEvent in the revocation's transaction */
#endif
#ifndef FIX_REVOKE_ANY_TOKEN
#define FIX_REVOKE_ANY_TOKEN 1   /* 6. /oauth/revoke ends the session of any of its tokens */
#endif
#ifndef FIX_CACHE_RECHECK
#define FIX_CACHE_RECHECK 1      /* 8. the cache remembers a read only if the store vouches still */
#endif
#ifndef FIX_SQLITE_ONE_PROCESS
#define FIX_SQLITE_ONE_PROCESS 1 /* 7. one server process per SQLite file */
#endif
/* ---- DPoP (issue 18): the rules of a session bound to a key at sign-in (SCENARIO DPOP). ---- */
#ifndef FIX_STATEMENT_LOCK
#define FIX_STATEMENT_LOCK 1     /* issue 19: the one-statement refresh locks the session's row first
                                    (select ... for update), as findTokenWithSession does */
#endif
#ifndef FIX_DPOP_KEY_FIRST
#define FIX_DPOP_KEY_FIRST 1     /* the key check right after the revocation check, before anything
                                    else; 0: only on the path of a live, never-rotated token */
#endif
#ifndef FIX_DPOP_RETRY
#define FIX_DPOP_RETRY 1         /* a rotated token with a proof by the session's key, whose successor
                                    was never rotated, gets that successor, at any later time */
#endif
/* The environment's assumption about cookie jars: responses to one jar apply in the order their
 * requests were sent (the SDK's cross-tab Web Lock; see docs/protocol.md). 0: in any order. */
#ifndef JAR_FIFO
#define JAR_FIFO 1
#endif

/* ---- The configuration (model/check.mjs passes these with -D). ---- */
#define HONEST 1   /* honest tabs, crashes, a lagging clock: nobody is logged out */
#define ATTACK 2   /* one honest tab and an attacker with a copied token */
#define REVOKE 3   /* honest tabs refreshing while a revocation runs */
#define CACHE 4    /* access checks on both instances while a revocation runs */
#define DPOP 5     /* a session bound to a key (DPoP): its tab, whose answers get lost, retries its
                      token at any later time; an attacker has a copy of the token, not the key */
#ifndef SCENARIO
#define SCENARIO HONEST
#endif
/* Issue 19: on PostgreSQL a refresh may first be tried as one statement (migration 0013's
 * function; rotate-refresh-token.ts, rotateInOneStatement), when the instance knows the token's
 * session. It either rotates a live token or writes nothing, and the transaction follows. 0: every
 * refresh takes the transaction (the model before issue 19). */
#ifndef ONE_STATEMENT
#define ONE_STATEMENT 1
#endif
/* The statement's key check (v_session.dpop_jkt = p_dpop_jkt): only the DPoP scenario binds. */
#if SCENARIO == DPOP
#define STATEMENT_KEY_OK hasKey
#else
#define STATEMENT_KEY_OK true
#endif
#ifndef SQLITE
#define SQLITE 0   /* 1: SQLite, transactions of one process are serial */
#endif
#if SQLITE && !FIX_SQLITE_ONE_PROCESS
#define NINST 2
#elif SQLITE
#define NINST 1
#else
#define NINST 2
#endif
#ifndef NTABS
#define NTABS 3    /* honest tabs */
#endif
#ifndef SHARED
#define SHARED 2   /* tabs 0 .. SHARED-1 share cookie jar 0; every other tab has a private copy */
#endif
#ifndef NREQ
#define NREQ 2     /* requests per tab */
#endif
#ifndef MAXTIME
#define MAXTIME 3  /* the database clock runs 0 .. MAXTIME */
#endif
#ifndef CRASHES
#define CRASHES 1  /* crashes in one run */
#endif
#ifndef GRACE
#define GRACE 2    /* the grace window (refreshGrace), in ticks */
#endif
#ifndef LAG
#define LAG 1      /* instance 1's clock is this many ticks behind the database's */
#endif
#ifndef HEARTBEAT_INTERVAL
#define HEARTBEAT_INTERVAL 1
#endif
#ifndef HEARTBEAT_TIMEOUT
#define HEARTBEAT_TIMEOUT 1
#endif
#ifndef NETFAULTS
#define NETFAULTS 1 /* LISTEN connections that break (half-open or with an error) */
#endif
#ifndef NATTACK
#define NATTACK 1  /* the attacker's requests */
#endif
#define BOUND (HEARTBEAT_INTERVAL + HEARTBEAT_TIMEOUT)
#define NJARS (1 + NTABS - SHARED)
#define JAR(c) ((c) < SHARED -> 0 : 1 + (c) - SHARED)
#define MAXTOK (NTABS * NREQ + NATTACK + 2)
#define NONE 255

/* Property names: `assert(name || condition)` makes pan print the name with a violation. */
hidden byte honest_not_logged_out, honest_not_failed, attacker_after_window_gets_nothing,
  no_refresh_after_revocation, access_refused_within_bound, revocation_recorded,
  revoke_by_any_token_ends_session, inv1_one_live_token, inv2_single_use_outside_window,
  thief_without_key_gets_nothing, thief_cannot_revoke;
#define CHECK(name, cond) assert(name || (cond))

/* ---- The database: committed rows, row locks, the clock. ---- */
byte now;                   /* clock_timestamp() */
bool exists[MAXTOK];        /* user_tokens row of Tk committed */
byte rotAt[MAXTOK];         /* its rotated_at as committed (NONE = NULL) */
bool revoked;               /* sessions.revoked_at IS NOT NULL, committed */
byte revokedAt = NONE;      /* ghost: the clock when that commit happened */
byte sessLock;              /* holder of the session row's lock (1 + pid), 0 = none */
byte tokLock[MAXTOK];       /* holders of token rows' locks */
byte dbLock;                /* SQLite: the transaction holding the file (1 + pid) */
byte dbOwner;               /* SQLite: the process (instance) of that transaction */
byte crashes = CRASHES;
byte busyTx;                /* refresh transactions between their time read and their end: they
                               take less than a tick (docs/protocol.md, "Fast transactions") */
byte rotReal[MAXTOK];       /* ghost: the real time (database clock) of Tk's rotation decision */
hidden byte ii, nlive;        /* scratch for checks */

/* ---- Clients. ---- */
byte jar[NJARS];            /* the refresh token in each cookie jar / private copy (index) */
byte sent[NJARS], applied[NJARS]; /* tickets: requests sent to, responses applied to, each jar */
bool inflight[NTABS];       /* an honest refresh sent and not answered yet (retried after a crash) */
byte inTok[NTABS];          /* the token it carries */

/* ---- Each instance: session cache and LISTEN connection (postgres-changes.ts). ---- */
#define DOWN 0
#define LIVE 1
#define HALF 2              /* half-open: dead, but no 'end' or 'error' event */
byte conn[NINST];
bool listening[NINST];      /* ChangeWatch.current() */
bool cached[NINST];         /* SessionStateCache holds the (active) session */
byte gen[NINST];            /* its #generation */
bool notified[NINST];       /* a NOTIFY s:<id> on its way */
bool hbOut[NINST];          /* a heartbeat query without answer */
byte hbAt[NINST], nextHb[NINST];
byte netfaults = NETFAULTS;

/* Who sends a refresh. */
#define HONESTTAB 0
#define ATTACKER 1

/* Outcomes of a request. */
#define OK 1
#define INVALID 2           /* 401 invalid_token */
#define SESSION_REVOKED 3   /* 401 session_revoked */
#define REUSED 4            /* 401 refresh_token_reused */
#define BUSY 5              /* 503: SQLITE_BUSY */
#define LOST 6              /* crashed: rolled back, or the response lost after COMMIT */

/* A crash instead of the next statement: the transaction rolls back (the connection dies). */
#define CRASH :: atomic { crashes > 0 -> crashes-- }; goto rollback

/* Instance clocks (clock.now()); instance 1 lags. */
#define INSTNOW(i) ((i) == 1 && LAG > 0 -> (now >= LAG -> now - LAG : 0) : now)

#if SQLITE
#define LOCK_SESSION skip
#define LOCK_TOKEN(t) skip
#else
#define LOCK_SESSION (sessLock == 0 || sessLock == me) -> sessLock = me
#define LOCK_TOKEN(t) (tokLock[t] == 0 || tokLock[t] == me)
#endif

/* End of a transaction (COMMIT or ROLLBACK): its locks go. */
inline release() {
  d_step {
  if :: timed -> busyTx--; timed = false :: else fi;
  if :: sessLock == me -> sessLock = 0 :: else fi;
  ii = 0;
  do :: ii < MAXTOK -> if :: tokLock[ii] == me -> tokLock[ii] = 0 :: else fi; ii++ :: else -> break od;
  if :: dbLock == me -> dbLock = 0 :: else fi
  }
}

/* NOTIFY rotor_session_state 's:<id>' (migration 0003's trigger), delivered after COMMIT. */
inline notify() {
  d_step {
  ii = 0;
  do
  :: ii < NINST -> if :: conn[ii] == LIVE -> notified[ii] = true :: else fi; ii++
  :: else -> break
  od
  }
}

/* Invariant 1, checked where committed state changes. */
inline checkOneLiveToken() {
  d_step {
  ii = 0; nlive = 0;
  do :: ii < MAXTOK -> if :: exists[ii] && rotAt[ii] == NONE -> nlive++ :: else fi; ii++ :: else -> break od;
  CHECK(inv1_one_live_token, nlive <= 1)
  }
}

/* SQLite: BEGIN. One process runs its transactions one after another (one connection); another
 * process's open transaction makes the statement fail with SQLITE_BUSY (503). */
inline begin() {
#if SQLITE
  if
  :: atomic { dbLock == 0 -> dbLock = me; dbOwner = inst }
  :: atomic { dbLock != 0 && dbOwner != inst -> out = BUSY }
  fi
#else
  skip
#endif
}

/*
 * rotateRefreshToken → store.transaction(decide): the refresh decision of DESIGN.md for token `tok`
 * on instance `inst`. Sets `out` and, on success, `ans` (the token handed out).
 */
inline rotateRefreshToken() {
  out = 0; won = false; pendRev = false; pendEv = false; lost = false;
#if ONE_STATEMENT && !SQLITE
  /* rotateInOneStatement: the model lets any request try it (an instance knows the session of
   * every token it issued; the choice of which requests do is the model's). One call, its own
   * transaction, its statements in this order: */
  if
  :: skip ->
    /* select * from sessions where id = $session for update */
#if FIX_STATEMENT_LOCK
    if :: atomic { LOCK_SESSION; sRev = revoked } CRASH fi;
#else
    if :: atomic { sRev = revoked } CRASH fi;
#endif
    /* v_now := clock_timestamp(), after the lock */
    if :: atomic { myNow = now; myNowReal = now; busyTx++; timed = true } CRASH fi;
    /* select * from user_tokens where token_hash = $token: a statement of a plpgsql function
     * sees what committed before it began, so after the lock, not at the call's start */
    if :: atomic { tEx = exists[tok]; tRot = rotAt[tok]; arrRot = tRot; arrival = now } CRASH fi;
    if
    :: tEx && !sRev && tRot == NONE && STATEMENT_KEY_OK ->
      /* update user_tokens set rotated_at ... where token_hash = $token and rotated_at is null */
      if
      :: atomic { LOCK_TOKEN(tok) ->
           if
           :: rotAt[tok] == NONE -> tokLock[tok] = me; won = true; rotReal[tok] = myNowReal
           :: else -> won = false
           fi }
      CRASH
      fi;
      /* won: insert the successor, update sessions, return (COMMIT), as the transaction's won
       * branch; lost (cannot happen while the session's lock is held): return null */
      if :: won -> goto rotatedCommit :: else fi
    :: else
    fi;
    /* return null: nothing written; the call's transaction ends and the full decision follows */
    atomic { release(); tEx = false; sRev = false; tRot = 0; arrRot = 0; won = false; myNow = 0; myNowReal = 0 }
  :: skip
  fi;
#endif
  begin();
  if :: out == BUSY -> goto answered :: else fi;
#if !FIX_ONE_CLOCK
  /* decide(): const now = ctx.clock.now() -- this instance's own clock */
  if :: atomic { myNow = INSTNOW(inst); myNowReal = now; busyTx++; timed = true } CRASH fi;
#endif
  /* tx.findTokenWithSession(presentedHash) */
#if FIX_LOCK_SESSION && !SQLITE
  /* SELECT ... FOR UPDATE OF sessions: the token row as of the statement's snapshot, then the
   * session row's newest version once its lock is granted (PostgreSQL re-reads a locked row). */
  if :: atomic { tEx = exists[tok]; tRot = rotAt[tok]; arrRot = tRot; arrival = now } CRASH fi;
  if :: atomic { LOCK_SESSION; sRev = revoked } CRASH fi;
#else
  if :: atomic { tEx = exists[tok]; tRot = rotAt[tok]; arrRot = tRot; sRev = revoked; arrival = now } CRASH fi;
#endif
#if FIX_ONE_CLOCK
  /* store.databaseNow(): SELECT clock_timestamp() */
  if :: atomic { myNow = now; myNowReal = now; busyTx++; timed = true } CRASH fi;
#endif
  if
  :: !tEx -> out = INVALID; goto refused
  :: sRev -> out = SESSION_REVOKED; goto refused
#if SCENARIO == DPOP && FIX_DPOP_KEY_FIRST
  /* DPoP: the session is bound (its jkt, read with it); a proof by another key, or none, is refused
     before anything else: 401 invalid_token, nothing written, nothing revoked (an audit event) */
  :: tEx && !sRev && !hasKey -> out = INVALID; goto refused
#endif
  :: else
  fi;
  if
  :: tRot == NONE ->
#if SCENARIO == DPOP && !FIX_DPOP_KEY_FIRST
    /* DPoP, the key checked only for a live token: a rotated one goes on to the window / re-use */
    if :: !hasKey -> out = INVALID; goto refused :: else fi;
#endif
    /* tx.markTokenRotated: UPDATE user_tokens SET rotated_at ... WHERE token_hash = ? AND
     * rotated_at IS NULL -- waits for a writer of the row, then judges its newest version */
    if
    :: atomic { LOCK_TOKEN(tok) ->
         if
         :: rotAt[tok] == NONE -> tokLock[tok] = me; won = true; rotReal[tok] = myNowReal
         :: else -> won = false
         fi }
    CRASH
    fi;
    if
    :: won ->
      /* tx.insertToken(successor) and the event of a moved session: seen by nobody before COMMIT,
       * so they are part of the next step. tx.touchSession: UPDATE sessions (the row lock). */
rotatedCommit:
      if :: atomic { LOCK_SESSION } CRASH fi;
      /* COMMIT */
      atomic {
        CHECK(inv2_single_use_outside_window, rotAt[tok] == NONE);
        CHECK(no_refresh_after_revocation, !revoked);
#if SCENARIO == DPOP
        CHECK(thief_without_key_gets_nothing, hasKey);
#endif
        rotAt[tok] = myNow; exists[tok + 1] = true;
        release();
        checkOneLiveToken();
        ans = tok + 1; out = OK;
        printf("MSC: %d: T%d rotated to T%d (rotated_at %d, clock %d, instance %d)\n", _pid, tok, ans, myNow, now, inst);
        if :: skip :: crashes > 0 -> crashes--; lost = true fi
      }
      goto answered
    :: else ->
      /* Lost the conditional update: tx.findTokenByHash(presentedHash) again, judged as a racer */
      if :: atomic { tRot = rotAt[tok] } CRASH fi
    fi
  :: else
  fi;
  /* graceSuccessor: rotated, and now - rotated_at < grace */
  if
  :: tRot != NONE && myNow - tRot < GRACE ->
#if FIX_CHAIN_TIP
    /* the live tip, in one statement: tx.findChainTip(token_hash, MAX_CHAIN_LINKS) follows
       successor_hash to the last link (a recursive query); its value is re-derived in the process */
    if
    :: atomic {
         k = tok + 1;
         do
         :: exists[k] && rotAt[k] != NONE -> k++
         :: else -> break
         od;
         kEx = exists[k]; kRot = rotAt[k]
       }
    CRASH
    fi;
    assert(kEx && kRot == NONE);
#else
    /* tx.findTokenByHash(successorHash): the successor, if it is not rotated */
    k = tok + 1;
    if :: atomic { kEx = exists[k]; kRot = rotAt[k] } CRASH fi;
    if :: !kEx || kRot != NONE -> goto reuse :: else fi;
#endif
    /* COMMIT (nothing written) */
    atomic {
      CHECK(no_refresh_after_revocation, !revoked);
      CHECK(inv2_single_use_outside_window, who == ATTACKER || arrival < rotReal[tok] + GRACE);
#if SCENARIO == DPOP
      CHECK(thief_without_key_gets_nothing, hasKey);
#endif
      release();
      ans = k; out = OK;
      printf("MSC: %d: T%d in the window: T%d handed out (clock %d, instance %d)\n", _pid, tok, ans, now, inst);
      if :: skip :: crashes > 0 -> crashes--; lost = true fi
    }
    goto answered
  :: else
  fi;
#if SCENARIO == DPOP && FIX_DPOP_RETRY
  /* DPoP, a retry is not a theft: the token is rotated (its window closed), the proof is by the
     session's key; tx.findTokenByHash(successorHash): if the successor was never rotated (and is
     unexpired: expiry is not modelled), it is the answer again, at any time. COMMIT, nothing written. */
  if
  :: hasKey ->
    k = tok + 1;
    if :: atomic { kEx = exists[k]; kRot = rotAt[k] } CRASH fi;
    if
    :: kEx && kRot == NONE ->
      atomic {
        CHECK(no_refresh_after_revocation, !revoked);
        CHECK(thief_without_key_gets_nothing, hasKey);
        release();
        ans = k; out = OK;
        printf("MSC: %d: T%d re-sent with the key, its successor unused: T%d handed out again (clock %d, instance %d)\n", _pid, tok, ans, now, inst);
        if :: skip :: crashes > 0 -> crashes--; lost = true fi
      }
      goto answered
    :: else
    fi
  :: else
  fi;
#endif
reuse:
  /* tx.revokeSession(id, now, 'reuse_detected'): UPDATE sessions ... WHERE revoked_at IS NULL */
  if :: atomic { LOCK_SESSION; pendRev = !revoked } CRASH fi;
#if FIX_AUDIT_IN_TX
  pendEv = pendRev; /* tx.insertEvent(reuse_detected): part of the COMMIT step */
#endif
  /* COMMIT */
  atomic {
#if SCENARIO == DPOP
    CHECK(thief_cannot_revoke, !pendRev || hasKey);
#endif
    if :: pendRev -> revoked = true; revokedAt = now; notify() :: else fi;
    release();
    out = REUSED;
    printf("MSC: %d: T%d re-used: session revoked (clock %d, instance %d)\n", _pid, tok, now, inst);
    if :: skip :: crashes > 0 -> crashes--; lost = true fi
  }
#if !FIX_AUDIT_IN_TX
  /* rotor.ts refresh(): sessionOfRefreshToken + audit.record(reuse_detected), after the COMMIT */
  if
  :: !lost && pendRev ->
    if
    :: pendEv = true
    :: atomic { crashes > 0 -> crashes--; lost = true }; printf("MSC: %d: crash before audit.record\n", _pid)
    fi
  :: else
  fi;
#endif
  CHECK(revocation_recorded, !pendRev || pendEv);
  goto answered;
refused:
  atomic { release() } /* COMMIT (nothing written) */
  goto answered;
rollback:
  atomic {
    if :: won && rotAt[tok] == NONE -> rotReal[tok] = NONE :: else fi;
    release();
    printf("MSC: %d: crash: transaction rolled back (clock %d)\n", _pid, now);
    lost = true
  }
answered:
  skip;
  d_step {
    if :: lost -> out = LOST :: else fi;
    /* dead from here on: reset, so that states differing only in them are one */
    k = 0; kRot = 0; kEx = false; tEx = false; sRev = false; won = false; lost = false;
    pendRev = false; pendEv = false; myNow = 0; myNowReal = 0; inst = 0;
#if SCENARIO != ATTACK
    tRot = 0; arrRot = 0; arrival = 0;
#endif
  }
}

#define REFRESH_LOCALS \
  byte me = _pid + 1; byte inst, tok, out, ans, k, kRot, tRot, arrRot, myNow, myNowReal, arrival; \
  bool tEx, kEx, sRev, won, lost, pendRev, pendEv, timed

inline pickInstance() {
  if :: inst = 0 :: NINST > 1 -> inst = NINST - 1 fi
}

/* The clock ticks while every assumption of docs/protocol.md allows. */
#define PROMPT(c) (!inflight[c] || rotReal[inTok[c]] == NONE || now + 1 < rotReal[inTok[c]] + GRACE)
#define PRIVATE(c) (NJARS == 1 || rotReal[jar[JAR(c)]] == NONE || now + 1 < rotReal[jar[JAR(c)]] + GRACE)
#define HEART(i) (!(conn[i] == LIVE && (notified[i] || hbOut[i])) \
  && !(FIX_HEARTBEAT && listening[i] && !hbOut[i] && now >= nextHb[i]) \
  && !(hbOut[i] && now >= hbAt[i] + HEARTBEAT_TIMEOUT))

#if SCENARIO == DPOP
#define TABOK(c) true      /* the bound tab retries, and sends its jar's token, at any later time */
#else
#define TABOK(c) ((c) >= NTABS || (PROMPT(c) && PRIVATE(c)))
#endif
#if SCENARIO == CACHE
#define HEARTS (HEART(0) && HEART(NINST - 1))
#else
#define HEARTS true
#endif

active proctype Clock() {
end:
  do
  :: atomic { now < MAXTIME && busyTx == 0 && TABOK(0) && TABOK(1) && TABOK(2) && TABOK(3) && HEARTS ->
       now++; printf("MSC: tick: clock %d\n", now) }
  od
}

/*
 * An honest tab: each request carries its jar's token and applies the response's token to the jar
 * (Set-Cookie, or the SDK's copy); a crash makes it retry the same token at once.
 */
proctype Tab(byte c) {
  REFRESH_LOCALS;
  byte who = HONESTTAB, j = JAR(c), ticket, n;
#if SCENARIO == DPOP
  bool hasKey = true;       /* its DPoP proofs are by the session's key */
#endif
  do
  :: n < NREQ ->
     n++;
     atomic { tok = jar[j]; ticket = sent[j]; sent[j]++; inflight[c] = true; inTok[c] = tok;
              printf("MSC: %d: tab %d sends T%d\n", _pid, c, tok) }
retry:
     pickInstance();
     rotateRefreshToken();
#if SCENARIO == DPOP
     if :: out == LOST -> printf("MSC: %d: tab %d: no answer; it sends T%d again, at any later time\n", _pid, c, tok); goto retry :: else fi;
#else
     if :: out == LOST -> goto retry :: else fi;
#endif
     /* the response's Set-Cookie applies (it arrives within the window, like a retry) */
     atomic {
#if JAR_FIFO
       applied[j] == ticket ->
#endif
       applied[j]++; inflight[c] = false;
       if :: out == OK -> jar[j] = ans :: else fi
     }
#if SCENARIO == HONEST || SCENARIO == DPOP
     CHECK(honest_not_logged_out, out != REUSED && out != SESSION_REVOKED && out != INVALID);
     CHECK(honest_not_failed, out != BUSY);
#endif
     if :: out != OK -> break :: else fi
  :: else -> break
  od
}

/* An attacker holding a copy of the token in jar 0 taken at some moment; it presents it later. */
proctype Attacker() {
  REFRESH_LOCALS;
  byte who = ATTACKER, n;
  bool after;
#if SCENARIO == DPOP
  bool hasKey = false;      /* it has a copy of the token, not the key: no proof by it */
#endif
  tok = jar[0];
  do
  :: tok = jar[0]
  :: break
  od;
  do
  :: n < NATTACK ->
     n++;
#if SCENARIO == DPOP
     printf("MSC: %d: the attacker sends T%d without the key\n", _pid, tok);
#endif
     pickInstance();
     rotateRefreshToken();
#if SCENARIO != DPOP
     /* presented after the window: its rotation had committed and the window had closed */
     after = (arrRot != NONE && arrival >= rotReal[tok] + GRACE);
     CHECK(attacker_after_window_gets_nothing, !after || out == LOST || (out != OK && revoked))
#else
     skip /* DPoP: thief_without_key_gets_nothing and thief_cannot_revoke, checked in the decision */
#endif
  :: else -> break
  od
}

#define LOGOUT 1          /* /auth/logout: endSessionByRefreshToken */
#define OAUTH_REVOKE 2    /* /oauth/revoke with a refresh token */
#define REVOKE_BY_ID 3    /* revokeUserSession, endSession, revokeAllUserSessions, setPassword */

/* A revocation of the session, of each kind, with any token the device held. */
proctype Revoker() {
  byte me = _pid + 1, inst, kind, tok, out;
  bool tRotated, pendRev, pendEv, lost, done, timed;
  pickInstance();
#if SCENARIO == CACHE
  kind = REVOKE_BY_ID; /* the kinds differ only in reading the refresh token: none here */
#else
  if :: kind = LOGOUT :: kind = OAUTH_REVOKE :: kind = REVOKE_BY_ID fi;
#endif
  /* the refresh token the device sends: the jar's, taken now or later */
  tok = jar[0];
  do :: tok = jar[0] :: break od;
  begin();
  if :: out == BUSY -> goto ended :: else fi;
  if
  :: kind == LOGOUT || (kind == OAUTH_REVOKE && FIX_REVOKE_ANY_TOKEN) ->
     /* tx.findTokenByHash(hash); tx.findSession(token.session_id): any token of the session */
     if :: atomic { tRotated = (rotAt[tok] != NONE) } CRASH fi
  :: kind == OAUTH_REVOKE && !FIX_REVOKE_ANY_TOKEN ->
     /* inspectRefreshToken: a rotated token is "invalid": nothing is revoked (200) */
     if :: atomic { tRotated = (rotAt[tok] != NONE) } CRASH fi;
     if :: tRotated -> atomic { release() }; done = true; goto ended :: else fi
  :: kind == REVOKE_BY_ID -> skip /* tx.findSession(id) has nothing to see */
  fi;
  /* tx.revokeSession(id, now, reason) / tx.revokeUserSessions(userId, now, reason):
   * UPDATE sessions SET revoked_at = ? ... WHERE revoked_at IS NULL (waits for the row's lock) */
  if :: atomic { LOCK_SESSION; pendRev = !revoked } CRASH fi;
#if FIX_AUDIT_IN_TX
  pendEv = pendRev; /* tx.insertEvent(logout | session_revoked | logout_all | password_changed) */
#endif
  /* COMMIT */
  atomic {
    if :: pendRev -> revoked = true; revokedAt = now; notify() :: else fi;
    release();
    printf("MSC: %d: revocation (kind %d, T%d) committed (clock %d, instance %d)\n", _pid, kind, tok, now, inst);
    if :: skip :: crashes > 0 -> crashes--; lost = true fi
  }
  /* The store's own listeners after the transaction (kysely-store.ts #changed): this instance's
   * cache forgets the session at once. */
  if :: !lost -> atomic { gen[inst]++; cached[inst] = false } :: else fi;
#if !FIX_AUDIT_IN_TX
  /* rotor.ts logoutWithRefreshToken, logoutSession, logoutAll, revokeSession: audit.record(...) after the COMMIT */
  if
  :: !lost && pendRev ->
    if
    :: pendEv = true
    :: atomic { crashes > 0 -> crashes--; lost = true }; printf("MSC: %d: crash before audit.record\n", _pid)
    fi
  :: else
  fi;
#endif
  CHECK(revocation_recorded, !pendRev || pendEv);
  done = !lost;
  goto ended;
rollback:
  atomic { release(); lost = true; printf("MSC: %d: crash: revocation rolled back\n", _pid) }
ended:
  CHECK(revoke_by_any_token_ends_session, !done || kind == REVOKE_BY_ID || revoked)
}

/*
 * authenticate (engine/authenticate.ts): verify the JWT (always valid here: only the session can end), then the
 * session state from this instance's SessionStateCache, else from the database.
 */
proctype Reader(byte c) {
  byte inst, n, g;
  bool cur, hit, live;
  do
  :: n < NREQ ->
     n++;
     pickInstance();
     /* sessionStates.sync(): ChangeWatch.current(); then accessTokens.verify (awaited): any
        number of steps may pass before the read */
     cur = listening[inst];
     atomic {
       /* sessionStates.get(sid, readSessionState, current) */
       hit = cur && cached[inst];
       g = gen[inst];
       /* on a miss, store.findSessionWithUser(id): the committed row */
       live = (hit -> true : !revoked);
       CHECK(access_refused_within_bound, !live || !revoked || now <= revokedAt + BOUND);
       printf("MSC: %d: authenticate on instance %d: %d (cache hit %d, clock %d)\n", _pid, inst, live, hit, now)
     }
     /* #remember, when no change came in since the read began (and, FIX_CACHE_RECHECK, the watch
        is current still: ChangeWatch.current() again) */
#if FIX_CACHE_RECHECK
     atomic { if :: !hit && live && cur && g == gen[inst] && listening[inst] -> cached[inst] = true :: else fi }
#else
     atomic { if :: !hit && live && cur && g == gen[inst] -> cached[inst] = true :: else fi }
#endif
  :: else -> break
  od
}

/* postgresChanges(url): the LISTEN connection of instance i, its dispatch and its heartbeat. */
proctype Listener(byte i) {
end:
  do
  /* dispatch('s:<id>'): SessionStateCache.session(id) */
  :: atomic { conn[i] == LIVE && notified[i] -> notified[i] = false; gen[i]++; cached[i] = false }
  /* the connection dies without closing: what was on its way is lost */
  :: atomic { conn[i] == LIVE && netfaults > 0 -> netfaults--; conn[i] = HALF; notified[i] = false;
              printf("MSC: LISTEN connection of instance %d half-open (clock %d)\n", i, now) }
  /* 'error' or 'end': lost(): listening = false, everything() */
  :: atomic { conn[i] == LIVE && netfaults > 0 -> netfaults--; conn[i] = DOWN; notified[i] = false;
              hbOut[i] = false; listening[i] = false; gen[i]++; cached[i] = false }
  /* connect(): LISTEN rotor_session_state, everything(), listening = true */
  :: atomic { conn[i] == DOWN -> conn[i] = LIVE; gen[i]++; cached[i] = false; listening[i] = true;
              nextHb[i] = now + HEARTBEAT_INTERVAL }
#if FIX_HEARTBEAT
  /* the heartbeat query, every HEARTBEAT_INTERVAL */
  :: atomic { listening[i] && !hbOut[i] && now >= nextHb[i] -> hbOut[i] = true; hbAt[i] = now;
              nextHb[i] = now + HEARTBEAT_INTERVAL }
  /* its answer */
  :: atomic { conn[i] == LIVE && hbOut[i] -> hbOut[i] = false }
  /* no answer within HEARTBEAT_TIMEOUT: lost() */
  :: atomic { hbOut[i] && now >= hbAt[i] + HEARTBEAT_TIMEOUT -> conn[i] = DOWN; notified[i] = false;
              hbOut[i] = false; listening[i] = false; gen[i]++; cached[i] = false;
              printf("MSC: heartbeat timeout on instance %d: cache stops answering (clock %d)\n", i, now) }
#endif
  od
}

init {
  byte c;
  atomic {
    /* login: startSession committed T0 */
    exists[0] = true;
    ii = 0;
    do :: ii < MAXTOK -> rotAt[ii] = NONE; rotReal[ii] = NONE; ii++ :: else -> break od;
    ii = 0;
    do :: ii < NINST -> conn[ii] = LIVE; listening[ii] = true; nextHb[ii] = HEARTBEAT_INTERVAL; ii++ :: else -> break od;
#if SCENARIO == CACHE
    c = 0;
    do :: c < NTABS -> run Reader(c); c++ :: else -> break od;
    run Revoker();
    run Listener(0);
    if :: NINST > 1 -> run Listener(NINST - 1) :: else fi;
#else
    c = 0;
    do :: c < NTABS -> run Tab(c); c++ :: else -> break od;
#if SCENARIO == ATTACK || SCENARIO == DPOP
    run Attacker();
#elif SCENARIO == REVOKE
    run Revoker();
#endif
#endif
  }
}
