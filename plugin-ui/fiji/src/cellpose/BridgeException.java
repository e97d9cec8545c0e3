package cellpose;

/** An error to show the user in an ImageJ dialog (never a stack trace). */
final class BridgeException extends Exception {
  private static final long serialVersionUID = 1L;

  BridgeException(String message) {
    super(message);
  }
}
