public enum StampCommand { public static func main() async {} }
