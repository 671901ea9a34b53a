public enum RustDeskUtilsPlaceholder {}
