package cellpose;

/**
 * A deadline on waiting for a server job: fails when what the job reports (its status and
 * progress) has not changed for a given time, so that a job stuck in "running" is not polled
 * forever.
 */
final class Stall {
  private final String what;
  private final long limitMs;
  private String last;
  private long since = System.currentTimeMillis();

  /** {@code what} names the job in the message ("The segmentation"); 0 or less: no deadline. */
  Stall(String what, double seconds) {
    this.what = what;
    this.limitMs = seconds > 0 ? Math.round(seconds * 1000) : Long.MAX_VALUE;
  }

  /** Notes the job's state; throws when it has been the same for longer than the limit. */
  void check(String state) throws BridgeException {
    long now = System.currentTimeMillis();
    if (!state.equals(last)) {
      last = state;
      since = now;
    } else if (now - since > limitMs) {
      throw new BridgeException(what + " made no progress for " + Math.round(limitMs / 1000.0) + " s (server says: "
          + state + "); gave up and cancelled it. Is the server overloaded or stuck? See its log, "
          + "or raise 'Give up after' (macro give=).");
    }
  }
}
