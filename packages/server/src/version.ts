/** The version of this package, reported at `/` and by `rotor --version`. */
export const VERSION = '0.1.0';
