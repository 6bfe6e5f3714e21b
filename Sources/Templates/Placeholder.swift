public enum TemplatesPlaceholder {}
